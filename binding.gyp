{
  "targets": [
    {
      "target_name": "tapvs_tap",
      "sources": ["native/tap_device.cc", "native/flow_steering.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=c++17"]
    }
  ]
}
