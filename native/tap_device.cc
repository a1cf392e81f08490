// tapvs TAP binding: create or attach a TAP device, read and write Ethernet frames in batches.
//
// The addon holds no packet logic. JavaScript registers one arena buffer and a few Int32Arrays once;
// a wake-up (uv_poll on the non-blocking fd, level-triggered) drains up to `rxSlots` frames into the
// arena's receive slots and calls back into JavaScript once with the count. JavaScript rewrites frames
// in place and describes what to send as (offset, length) pairs, then calls write(count) once.
//
// Room for later work is kept in the open options: IFF_VNET_HDR (offloads), IFF_MULTI_QUEUE (one fd per
// queue/worker), and a busy-poll phase before sleeping.

#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>
#include <time.h>

namespace {

std::string ErrnoText(const char* what, int err) {
  return std::string(what) + ": " + strerror(err);
}

// An AF_INET datagram socket for SIOC* interface ioctls, opened per call (control path only).
int WithIfreq(const char* ifname, unsigned long request, ifreq* ifr, std::string* error, const char* what) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *error = ErrnoText("socket(AF_INET)", errno);
    return -1;
  }
  strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
  int rc = ioctl(s, request, ifr);
  int err = errno;
  close(s);
  if (rc < 0) {
    *error = ErrnoText(what, err);
    return -1;
  }
  return 0;
}

class TapDevice : public Napi::ObjectWrap<TapDevice> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(
        env, "TapDevice",
        {
            InstanceAccessor<&TapDevice::GetName>("name"),
            InstanceAccessor<&TapDevice::GetFd>("fd"),
            InstanceAccessor<&TapDevice::GetCreated>("created"),
            InstanceAccessor<&TapDevice::GetVnetHdr>("vnetHdr"),
            InstanceAccessor<&TapDevice::GetTun>("tun"),
            InstanceMethod<&TapDevice::SetMac>("setMac"),
            InstanceMethod<&TapDevice::SetMtu>("setMtu"),
            InstanceMethod<&TapDevice::SetUp>("setUp"),
            InstanceMethod<&TapDevice::AddToBridge>("addToBridge"),
            InstanceMethod<&TapDevice::SetOffload>("setOffload"),
            InstanceMethod<&TapDevice::SetSteering>("setSteering"),
            InstanceMethod<&TapDevice::SetBuffers>("setBuffers"),
            InstanceMethod<&TapDevice::Read>("read"),
            InstanceMethod<&TapDevice::Write>("write"),
            InstanceMethod<&TapDevice::Start>("start"),
            InstanceMethod<&TapDevice::Stop>("stop"),
            InstanceMethod<&TapDevice::Close>("close"),
            InstanceMethod<&TapDevice::Counters>("counters"),
            InstanceMethod<&TapDevice::SetBusyPoll>("setBusyPoll"),
        });
    exports.Set("TapDevice", cls);
    return exports;
  }

  // new TapDevice(name, { vnetHdr?: boolean, multiQueue?: boolean, tun?: boolean })
  // tun: a layer-3 TUN device (IP packets, no Ethernet header) instead of a TAP.
  explicit TapDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TapDevice>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "TapDevice(name, options?): name must be a string").ThrowAsJavaScriptException();
      return;
    }
    std::string name = info[0].As<Napi::String>().Utf8Value();
    if (name.empty() || name.size() >= IFNAMSIZ) {
      Napi::TypeError::New(env, "TAP name must be 1.." + std::to_string(IFNAMSIZ - 1) + " characters").ThrowAsJavaScriptException();
      return;
    }
    bool multiQueue = false;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      vnet_hdr_ = o.Get("vnetHdr").ToBoolean().Value();
      multiQueue = o.Get("multiQueue").ToBoolean().Value();
      tun_ = o.Get("tun").ToBoolean().Value();
    }
    created_ = if_nametoindex(name.c_str()) == 0;

    fd_ = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) {
      Napi::Error::New(env, ErrnoText("open /dev/net/tun", errno)).ThrowAsJavaScriptException();
      return;
    }
    ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (tun_ ? IFF_TUN : IFF_TAP) | IFF_NO_PI;
    if (vnet_hdr_) ifr.ifr_flags |= IFF_VNET_HDR;
    if (multiQueue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
    strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_, TUNSETIFF, &ifr) < 0) {
      int err = errno;
      close(fd_);
      fd_ = -1;
      Napi::Error::New(env, ErrnoText(("TUNSETIFF " + name).c_str(), err)).ThrowAsJavaScriptException();
      return;
    }
    name_ = ifr.ifr_name;
    // A TAP that already existed keeps the offloads of its previous user: always set them explicitly.
    if (ioctl(fd_, TUNSETOFFLOAD, 0UL) < 0) {
      int err = errno;
      close(fd_);
      fd_ = -1;
      Napi::Error::New(env, ErrnoText("TUNSETOFFLOAD", err)).ThrowAsJavaScriptException();
      return;
    }
  }

  ~TapDevice() override { CloseFd(); }

 private:
  Napi::Value GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value GetCreated(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), created_); }
  Napi::Value GetVnetHdr(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), vnet_hdr_); }
  Napi::Value GetTun(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), tun_); }

  bool CheckOpen(Napi::Env env) {
    if (fd_ >= 0) return true;
    Napi::Error::New(env, "TAP device is closed").ThrowAsJavaScriptException();
    return false;
  }

  // setMac(Uint8Array(6)): the kernel-side interface's own MAC address.
  Napi::Value SetMac(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::Uint8Array>().ByteLength() != 6) {
      Napi::TypeError::New(env, "setMac(mac: Uint8Array(6))").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_hwaddr.sa_family = 1;  // ARPHRD_ETHER
    memcpy(ifr.ifr_hwaddr.sa_data, info[0].As<Napi::Uint8Array>().Data(), 6);
    std::string error;
    if (WithIfreq(name_.c_str(), SIOCSIFHWADDR, &ifr, &error, "SIOCSIFHWADDR") < 0)
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Napi::Value SetMtu(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_mtu = info[0].As<Napi::Number>().Int32Value();
    std::string error;
    if (WithIfreq(name_.c_str(), SIOCSIFMTU, &ifr, &error, "SIOCSIFMTU") < 0)
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // setUp(up: boolean)
  Napi::Value SetUp(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    bool up = info.Length() < 1 || info[0].ToBoolean().Value();
    ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    std::string error;
    if (WithIfreq(name_.c_str(), SIOCGIFFLAGS, &ifr, &error, "SIOCGIFFLAGS") < 0) {
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (up) ifr.ifr_flags |= IFF_UP;
    else ifr.ifr_flags &= ~IFF_UP;
    if (WithIfreq(name_.c_str(), SIOCSIFFLAGS, &ifr, &error, "SIOCSIFFLAGS") < 0)
      Napi::Error::New(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // addToBridge(bridge: string): enslave the TAP to a Linux bridge (SIOCBRADDIF).
  Napi::Value AddToBridge(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    std::string bridge = info[0].As<Napi::String>().Utf8Value();
    ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = static_cast<int>(if_nametoindex(name_.c_str()));
    std::string error;
    if (bridge.empty() || bridge.size() >= IFNAMSIZ || if_nametoindex(bridge.c_str()) == 0) {
      Napi::Error::New(env, "no such bridge: " + bridge).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (WithIfreq(bridge.c_str(), SIOCBRADDIF, &ifr, &error, "SIOCBRADDIF") < 0)
      Napi::Error::New(env, error + " (is " + bridge + " a bridge?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // setOffload(flags: number): TUNSETOFFLOAD (TUN_F_CSUM=1, TSO4=2, TSO6=4, TSO_ECN=8); needs vnetHdr.
  Napi::Value SetOffload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    unsigned long flags = info[0].As<Napi::Number>().Uint32Value();
    if (ioctl(fd_, TUNSETOFFLOAD, flags) < 0)
      Napi::Error::New(env, ErrnoText("TUNSETOFFLOAD", errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // setSteering(progFd): TUNSETSTEERINGEBPF (multiqueue devices): the kernel runs the BPF program for
  // each frame it hands to the device and uses its result (mod the number of queues) as the queue
  // (flow_steering.cc); -1 detaches it.
  Napi::Value SetSteering(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    int prog = info[0].As<Napi::Number>().Int32Value();
    if (ioctl(fd_, TUNSETSTEERINGEBPF, &prog) < 0)
      Napi::Error::New(env, ErrnoText("TUNSETSTEERINGEBPF", errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // setBuffers(arena: Uint8Array, rxSlotSize, rxSlots, rxLengths: Int32Array, txOffsets: Int32Array,
  //            txLengths: Int32Array, headroom = 0, rxVnet?: Uint8Array, txVnet?: Uint8Array): registered
  //            once; read() fills slots [0, rxSlots) of the arena, each frame starting `headroom` bytes into
  //            its slot (room to prepend headers). With IFF_VNET_HDR, each frame's 10-byte virtio_net_hdr
  //            goes to rxVnet[10 * slot] on read (readv) and comes from txVnet[10 * i] on write (writev), so
  //            frames keep their offsets.
  Napi::Value SetBuffers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 6 || !info[0].IsTypedArray() || !info[3].IsTypedArray() || !info[4].IsTypedArray() ||
        !info[5].IsTypedArray()) {
      Napi::TypeError::New(env, "setBuffers(arena, rxSlotSize, rxSlots, rxLengths, txOffsets, txLengths)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint8Array arena = info[0].As<Napi::Uint8Array>();
    uint32_t slotSize = info[1].As<Napi::Number>().Uint32Value();
    uint32_t slots = info[2].As<Napi::Number>().Uint32Value();
    Napi::Int32Array rxLens = info[3].As<Napi::Int32Array>();
    Napi::Int32Array txOffsets = info[4].As<Napi::Int32Array>();
    Napi::Int32Array txLens = info[5].As<Napi::Int32Array>();
    uint32_t headroom = info.Length() > 6 && info[6].IsNumber() ? info[6].As<Napi::Number>().Uint32Value() : 0;
    if (headroom + 64 > slotSize) {
      Napi::RangeError::New(env, "setBuffers: headroom leaves less than 64 bytes per slot").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (slotSize < 64 || slots == 0 || static_cast<uint64_t>(slotSize) * slots > arena.ByteLength() ||
        rxLens.ElementLength() < slots || txOffsets.ElementLength() != txLens.ElementLength()) {
      Napi::RangeError::New(env, "setBuffers: arena too small for rxSlots * rxSlotSize, or array sizes disagree")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    arena_ref_ = Napi::Persistent(arena.As<Napi::Object>());
    rx_lens_ref_ = Napi::Persistent(rxLens.As<Napi::Object>());
    tx_off_ref_ = Napi::Persistent(txOffsets.As<Napi::Object>());
    tx_len_ref_ = Napi::Persistent(txLens.As<Napi::Object>());
    rx_vnet_ = nullptr;
    tx_vnet_ = nullptr;
    if (vnet_hdr_) {
      if (info.Length() < 9 || !info[7].IsTypedArray() || !info[8].IsTypedArray() ||
          info[7].As<Napi::Uint8Array>().ByteLength() < static_cast<size_t>(kVnetHdrLen) * slots ||
          info[8].As<Napi::Uint8Array>().ByteLength() < static_cast<size_t>(kVnetHdrLen) * txLens.ElementLength()) {
        Napi::RangeError::New(env, "setBuffers: a vnetHdr device needs rxVnet and txVnet (10 bytes per slot / descriptor)")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array rxVnet = info[7].As<Napi::Uint8Array>(), txVnet = info[8].As<Napi::Uint8Array>();
      rx_vnet_ref_ = Napi::Persistent(rxVnet.As<Napi::Object>());
      tx_vnet_ref_ = Napi::Persistent(txVnet.As<Napi::Object>());
      rx_vnet_ = rxVnet.Data();
      tx_vnet_ = txVnet.Data();
    }
    arena_ = arena.Data();
    arena_len_ = arena.ByteLength();
    slot_size_ = slotSize;
    headroom_ = headroom;
    rx_slots_ = slots;
    rx_lens_ = rxLens.Data();
    tx_offsets_ = txOffsets.Data();
    tx_lens_ = txLens.Data();
    tx_capacity_ = txLens.ElementLength();
    return env.Undefined();
  }

  // Drain up to max frames into the receive slots. Returns the count; stops at EAGAIN.
  uint32_t Drain(uint32_t max) {
    if (fd_ < 0 || arena_ == nullptr) return 0;
    if (max > rx_slots_) max = rx_slots_;
    uint32_t n = 0;
    while (n < max) {
      uint8_t* frame = arena_ + static_cast<size_t>(n) * slot_size_ + headroom_;
      ssize_t r;
      if (rx_vnet_ != nullptr) {
        iovec iov[2] = {{rx_vnet_ + static_cast<size_t>(n) * kVnetHdrLen, kVnetHdrLen}, {frame, slot_size_ - headroom_}};
        r = ::readv(fd_, iov, 2);
        if (r > 0 && r < static_cast<ssize_t>(kVnetHdrLen)) {
          counters_[kRxErrors]++;
          continue;
        }
        if (r > 0) r -= static_cast<ssize_t>(kVnetHdrLen);
      } else {
        r = ::read(fd_, frame, slot_size_ - headroom_);
      }
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) counters_[kRxErrors]++;
        break;
      }
      if (r == 0) break;
      rx_lens_[n++] = static_cast<int32_t>(r);
    }
    counters_[kRxFrames] += n;
    return n;
  }

  // read(max?: number): number
  Napi::Value Read(const Napi::CallbackInfo& info) {
    uint32_t max = info.Length() > 0 ? info[0].As<Napi::Number>().Uint32Value() : rx_slots_;
    return Napi::Number::New(info.Env(), Drain(max));
  }

  // write(count): send frames txOffsets[i]..+txLengths[i] for i < count (length <= 0 = skip).
  // Returns the number of frames the kernel accepted; a refused frame is counted, never retried.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t count = info[0].As<Napi::Number>().Uint32Value();
    if (arena_ == nullptr || fd_ < 0) return Napi::Number::New(env, 0);
    if (count > tx_capacity_) count = tx_capacity_;
    uint32_t sent = 0;
    for (uint32_t i = 0; i < count; i++) {
      int32_t off = tx_offsets_[i], len = tx_lens_[i];
      if (len <= 0) continue;
      if (off < 0 || static_cast<size_t>(off) + static_cast<size_t>(len) > arena_len_) {
        counters_[kTxErrors]++;
        continue;
      }
      ssize_t w;
      do {
        if (tx_vnet_ != nullptr) {
          iovec iov[2] = {{tx_vnet_ + static_cast<size_t>(i) * kVnetHdrLen, kVnetHdrLen}, {arena_ + off, static_cast<size_t>(len)}};
          w = ::writev(fd_, iov, 2);
        } else {
          w = ::write(fd_, arena_ + off, static_cast<size_t>(len));
        }
      } while (w < 0 && errno == EINTR);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) counters_[kTxBusy]++;
        else counters_[kTxErrors]++;
      } else {
        sent++;
      }
    }
    counters_[kTxFrames] += sent;
    return Napi::Number::New(env, sent);
  }

  // start(onFrames: (count: number) => void): wake on readability, drain, call back once per batch.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (arena_ == nullptr) {
      Napi::Error::New(env, "start: call setBuffers first").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (polling_) return env.Undefined();
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    poll_->data = this;
    if (uv_poll_init(loop, poll_, fd_) != 0) {
      delete poll_;
      poll_ = nullptr;
      Napi::Error::New(env, "uv_poll_init failed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uv_poll_start(poll_, UV_READABLE, &TapDevice::OnReadable);
    polling_ = true;
    Ref();  // keep the wrapper alive while the poll handle may call into it
    return env.Undefined();
  }

  static uint64_t MonotonicNs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  }

  // setBusyPoll(windowUs, maxSpinUs): after a batch, keep polling the fd for up to windowUs (re-armed by
  // every non-empty batch) before going back to sleep on uv_poll; one wake-up never spins longer than
  // maxSpinUs in all, so timers and the control socket keep running. 0 turns it off (the default).
  Napi::Value SetBusyPoll(const Napi::CallbackInfo& info) {
    busy_window_ns_ = static_cast<uint64_t>(info[0].As<Napi::Number>().Uint32Value()) * 1000ull;
    busy_max_ns_ = static_cast<uint64_t>(info.Length() > 1 ? info[1].As<Napi::Number>().Uint32Value() : 2000) * 1000ull;
    return info.Env().Undefined();
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    TapDevice* self = static_cast<TapDevice*>(handle->data);
    if (self == nullptr || !self->polling_) return;
    self->counters_[kWakeups]++;
    uint32_t n = self->Drain(self->rx_slots_);
    if (n == 0) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    // MakeCallback runs the microtask queue and reports exceptions as uncaught, like any I/O callback.
    self->callback_.MakeCallback(env.Global(), {Napi::Number::New(env, n)});
    if (self->busy_window_ns_ == 0) return;
    // Adaptive busy-poll: the answer to what was just forwarded usually comes within tens of
    // microseconds; catching it here saves a sleep and a cross-CPU wake-up.
    const uint64_t start = MonotonicNs();
    uint64_t idleUntil = start + self->busy_window_ns_;
    const uint64_t stopAt = start + self->busy_max_ns_;
    for (;;) {
      if (!self->polling_) return;
      uint64_t now = MonotonicNs();
      if (now >= idleUntil || now >= stopAt) break;
      n = self->Drain(self->rx_slots_);
      if (n == 0) continue;
      self->counters_[kBusyPollBatches]++;
      Napi::HandleScope inner(env);
      self->callback_.MakeCallback(env.Global(), {Napi::Number::New(env, n)});
      idleUntil = MonotonicNs() + self->busy_window_ns_;
    }
  }

  void StopPolling() {
    if (!polling_) return;
    polling_ = false;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    callback_.Reset();
    Unref();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  void CloseFd() {
    if (fd_ >= 0) {
      close(fd_);  // a TAP this process created (not persistent) disappears with its last fd
      fd_ = -1;
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopPolling();
    CloseFd();
    arena_ = nullptr;
    return info.Env().Undefined();
  }

  // counters(): { rxFrames, rxErrors, txFrames, txErrors, txBusy, wakeups }
  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("rxFrames", Napi::Number::New(env, static_cast<double>(counters_[kRxFrames])));
    o.Set("rxErrors", Napi::Number::New(env, static_cast<double>(counters_[kRxErrors])));
    o.Set("txFrames", Napi::Number::New(env, static_cast<double>(counters_[kTxFrames])));
    o.Set("txErrors", Napi::Number::New(env, static_cast<double>(counters_[kTxErrors])));
    o.Set("txBusy", Napi::Number::New(env, static_cast<double>(counters_[kTxBusy])));
    o.Set("wakeups", Napi::Number::New(env, static_cast<double>(counters_[kWakeups])));
    o.Set("busyPollBatches", Napi::Number::New(env, static_cast<double>(counters_[kBusyPollBatches])));
    return o;
  }

  enum { kRxFrames, kRxErrors, kTxFrames, kTxErrors, kTxBusy, kWakeups, kBusyPollBatches, kCounterCount };

  int fd_ = -1;
  std::string name_;
  bool created_ = false;
  bool vnet_hdr_ = false;
  bool tun_ = false;
  bool polling_ = false;
  uint64_t busy_window_ns_ = 0, busy_max_ns_ = 0;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::ObjectReference arena_ref_, rx_lens_ref_, tx_off_ref_, tx_len_ref_, rx_vnet_ref_, tx_vnet_ref_;
  // virtio_net_hdr of each received slot / each transmit descriptor (IFF_VNET_HDR only).
  uint8_t* rx_vnet_ = nullptr;
  uint8_t* tx_vnet_ = nullptr;
  static constexpr size_t kVnetHdrLen = 10;
  uint8_t* arena_ = nullptr;
  size_t arena_len_ = 0;
  uint32_t slot_size_ = 0, headroom_ = 0, rx_slots_ = 0, tx_capacity_ = 0;
  int32_t* rx_lens_ = nullptr;
  int32_t* tx_offsets_ = nullptr;
  int32_t* tx_lens_ = nullptr;
  uint64_t counters_[kCounterCount] = {};
};

// hugePageBuffer(bytes): an ArrayBuffer backed by anonymous memory that asks for transparent huge pages
// (madvise MADV_HUGEPAGE), unmapped when the buffer is collected. Large random-access tables (the
// connection table) then cost far fewer TLB misses than with 4 KiB pages. Returns null when mmap fails.
Napi::Value HugePageBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "hugePageBuffer(bytes)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested > 0) || requested > 64.0 * 1024 * 1024 * 1024) {
    Napi::RangeError::New(env, "hugePageBuffer: bytes out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t huge = 2u << 20;
  size_t length = static_cast<size_t>(requested);
  size_t mapped = (length + huge - 1) & ~(huge - 1);
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return env.Null();
  madvise(p, mapped, MADV_HUGEPAGE);  // advisory: fine if the kernel says no
  size_t* hint = new size_t(mapped);
  return Napi::ArrayBuffer::New(
      env, p, length,
      [](Napi::Env, void* data, size_t* size) {
        munmap(data, *size);
        delete size;
      },
      hint);
}

}  // namespace

namespace flow_steering {
void Init(Napi::Env env, Napi::Object exports);
}

namespace {

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("hugePageBuffer", Napi::Function::New(env, HugePageBuffer));
  flow_steering::Init(env, exports);
  return TapDevice::Init(env, exports);
}

}  // namespace

NODE_API_MODULE(tapvs_tap, InitModule)
