// Flow steering for a multiqueue TAP (TUNSETSTEERINGEBPF): a small socket-filter BPF program that the
// kernel runs for every frame it hands to the TAP, returning the queue (modulo the number of queues).
//
// It steers by the connection's client end, so that both directions of a NAT connection meet the same
// queue: for an IPv4 or IPv6 TCP/UDP frame, if its source address is in the "service addresses" map
// (VIPs and real servers: value 1; FULLNAT local addresses: value 2; filled by the control plane), the
// client is the destination end, else the source end; the queue is a hash of that end's address and
// port. With `addressOnly` the port of a client's end is left out (all of a client's connections on one
// queue, as persistence needs); a local address's port always counts (FULLNAT replies carry no client,
// and each queue owns the local ports that hash to it). An ICMP or ICMPv6 error goes with the connection
// of the packet it quotes. Anything else goes to queue 0.
//
// Exported to JS: createSteeringMap(maxEntries) -> fd, steeringMapSet(fd, key u32, value 0..2; 0 removes),
// loadSteeringProgram(mapFd, addressOnly) -> fd. TapDevice.setSteering(progFd) attaches it (tap_device.cc).
#include <napi.h>

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

namespace flow_steering {

static int Bpf(int cmd, bpf_attr* attr) { return static_cast<int>(syscall(__NR_bpf, cmd, attr, sizeof(*attr))); }

static bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i;
  memset(&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

static Napi::Value Fail(Napi::Env env, const std::string& what, int err) {
  Napi::Error::New(env, what + ": " + strerror(err)).ThrowAsJavaScriptException();
  return env.Undefined();
}

// createSteeringMap(maxEntries): a BPF hash map u32 (IPv4 address, host order) -> u8.
Napi::Value CreateSteeringMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_HASH;
  attr.key_size = 4;
  attr.value_size = 1;
  attr.max_entries = info.Length() > 0 ? info[0].As<Napi::Number>().Uint32Value() : 1024;
  int fd = Bpf(BPF_MAP_CREATE, &attr);
  if (fd < 0) return Fail(env, "BPF_MAP_CREATE", errno);
  return Napi::Number::New(env, fd);
}

// steeringMapSet(mapFd, address, value): set an address's kind (1 service address, 2 local address), or
// remove it (0; false and true stand for 0 and 1).
Napi::Value SteeringMapSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint32_t key = info[1].As<Napi::Number>().Uint32Value();
  uint32_t kind = info[2].IsBoolean() ? (info[2].As<Napi::Boolean>().Value() ? 1 : 0) : info[2].As<Napi::Number>().Uint32Value();
  if (kind > 2) {
    Napi::RangeError::New(env, "steeringMapSet: value 0..2").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint8_t value = static_cast<uint8_t>(kind);
  bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = static_cast<uint32_t>(fd);
  attr.key = reinterpret_cast<uint64_t>(&key);
  bool present = kind != 0;
  // BPF_MAP_DELETE_ELEM wants every field after the key zero (else EINVAL).
  if (present) attr.value = reinterpret_cast<uint64_t>(&value);
  int r = Bpf(present ? BPF_MAP_UPDATE_ELEM : BPF_MAP_DELETE_ELEM, &attr);
  if (r < 0 && !(errno == ENOENT && !present)) return Fail(env, "BPF map update", errno);
  return env.Undefined();
}

// loadSteeringProgram(mapFd): the steering program (BPF_PROG_TYPE_SOCKET_FILTER), its fd.
//
// IPv4: the addresses as they are (host order); IPv6: folded to 32 bits (the xor of their four words,
// as IPVS folds IPv6 addresses for its hashing schedulers), so one u32 map serves both families. Ports
// from the TCP/UDP header (IPv4: after the IHL; IPv6: right after the fixed header, no extension
// headers). Anything else, queue 0.
Napi::Value LoadSteeringProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int mapFd = info[0].As<Napi::Number>().Int32Value();
  bool addressOnly = info.Length() > 1 && info[1].ToBoolean().Value();
  const uint8_t LDX_B = BPF_LDX | BPF_MEM | BPF_B;
  const uint8_t LD_ABS_W = BPF_LD | BPF_ABS | BPF_W, LD_ABS_H = BPF_LD | BPF_ABS | BPF_H, LD_ABS_B = BPF_LD | BPF_ABS | BPF_B;
  const uint8_t LD_IND_H = BPF_LD | BPF_IND | BPF_H, LD_IND_B = BPF_LD | BPF_IND | BPF_B, LD_IND_W = BPF_LD | BPF_IND | BPF_W;
  const uint8_t MOV_X = BPF_ALU64 | BPF_MOV | BPF_X, MOV_K = BPF_ALU64 | BPF_MOV | BPF_K, XOR_X = BPF_ALU64 | BPF_XOR | BPF_X;
  const uint8_t STX_W = BPF_STX | BPF_MEM | BPF_W, LDX_W = BPF_LDX | BPF_MEM | BPF_W;
  const uint8_t JEQ = BPF_JMP | BPF_JEQ | BPF_K, JNE = BPF_JMP | BPF_JNE | BPF_K;
  enum Label {
    kNone, kV6, kFallback, kPorts, kPortsSwapped, kLookup, kClientIsSource, kDestination, kLocalAddress, kHash,
    kIcmp4, kIcmp4Error, kIcmp6, kLabels
  };
  std::vector<bpf_insn> p;
  std::vector<std::pair<size_t, Label>> jumps;
  int at[kLabels] = {};
  auto emit = [&](uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm, Label to = kNone) {
    if (to != kNone) jumps.emplace_back(p.size(), to);
    p.push_back(Insn(code, dst, src, off, imm));
  };
  auto label = [&](Label l) { at[l] = static_cast<int>(p.size()); };

  emit(MOV_X, 6, 1, 0, 0);                  // r6 = skb (for LD_ABS/LD_IND)
  emit(LD_ABS_H, 0, 0, 0, 12);              // EtherType
  emit(JEQ, 0, 0, 0, 0x86dd, kV6);
  emit(JNE, 0, 0, 0, 0x0800, kFallback);
  emit(LD_ABS_B, 0, 0, 0, 23);              // IPv4 protocol
  emit(JEQ, 0, 0, 0, 1, kIcmp4);
  emit(JEQ, 0, 0, 1, 6);                    // TCP: skip the UDP test
  emit(JNE, 0, 0, 0, 17, kFallback);
  emit(LD_ABS_W, 0, 0, 0, 26);              // r7 = source address
  emit(MOV_X, 7, 0, 0, 0);
  emit(LD_ABS_W, 0, 0, 0, 30);              // r8 = destination address
  emit(MOV_X, 8, 0, 0, 0);
  emit(LD_ABS_B, 0, 0, 0, 14);              // r9 = IP header length
  emit(BPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, 15);
  emit(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 2);
  emit(MOV_X, 9, 0, 0, 0);
  emit(BPF_JMP | BPF_JA, 0, 0, 0, 0, kPorts);
  // An ICMP error (destination unreachable, time exceeded, parameter problem) goes where the packet it
  // quotes went: that packet was one of ours, so with its ends swapped it looks like a frame of its
  // connection coming in (ours to a real server becomes the real server's reply, ours to a client the
  // client's packet), and the rules below apply as they are.
  label(kIcmp4);
  emit(LD_ABS_B, 0, 0, 0, 14);              // r9 = outer IP header length
  emit(BPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, 15);
  emit(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 2);
  emit(MOV_X, 9, 0, 0, 0);
  emit(LD_IND_B, 0, 9, 0, 14);              // ICMP type
  emit(JEQ, 0, 0, 0, 3, kIcmp4Error);
  emit(JEQ, 0, 0, 0, 11, kIcmp4Error);
  emit(JNE, 0, 0, 0, 12, kFallback);
  label(kIcmp4Error);
  emit(LD_IND_B, 0, 9, 0, 14 + 8 + 9);      // the quoted packet's protocol
  emit(JEQ, 0, 0, 1, 6);
  emit(JNE, 0, 0, 0, 17, kFallback);
  emit(LD_IND_W, 0, 9, 0, 14 + 8 + 16);     // r7 = the quoted destination
  emit(MOV_X, 7, 0, 0, 0);
  emit(LD_IND_W, 0, 9, 0, 14 + 8 + 12);     // r8 = the quoted source
  emit(MOV_X, 8, 0, 0, 0);
  emit(LD_IND_B, 0, 9, 0, 14 + 8);          // r9 += 8 + the quoted header's length
  emit(BPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, 15);
  emit(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 2);
  emit(BPF_ALU64 | BPF_ADD | BPF_X, 9, 0, 0, 0);
  emit(BPF_ALU64 | BPF_ADD | BPF_K, 9, 0, 0, 8);
  emit(BPF_JMP | BPF_JA, 0, 0, 0, 0, kPortsSwapped);
  label(kV6);
  emit(LD_ABS_B, 0, 0, 0, 20);              // IPv6 next header
  emit(JEQ, 0, 0, 0, 58, kIcmp6);
  emit(JEQ, 0, 0, 1, 6);
  emit(JNE, 0, 0, 0, 17, kFallback);
  emit(LD_ABS_W, 0, 0, 0, 22);              // r7 = fold(source address)
  emit(MOV_X, 7, 0, 0, 0);
  for (int w = 1; w < 4; w++) {
    emit(LD_ABS_W, 0, 0, 0, 22 + 4 * w);
    emit(XOR_X, 7, 0, 0, 0);
  }
  emit(LD_ABS_W, 0, 0, 0, 38);              // r8 = fold(destination address)
  emit(MOV_X, 8, 0, 0, 0);
  for (int w = 1; w < 4; w++) {
    emit(LD_ABS_W, 0, 0, 0, 38 + 4 * w);
    emit(XOR_X, 8, 0, 0, 0);
  }
  emit(MOV_K, 9, 0, 0, 40);                 // r9 = IPv6 header length
  label(kPorts);
  emit(LD_IND_H, 0, 9, 0, 14);              // source port -> fp[-8]
  emit(STX_W, 10, 0, -8, 0);
  emit(LD_IND_H, 0, 9, 0, 16);              // destination port -> fp[-12]
  emit(STX_W, 10, 0, -12, 0);
  emit(BPF_JMP | BPF_JA, 0, 0, 0, 0, kLookup);
  // ICMPv6 errors (types 1..4; the quoted packet right after the 8-byte ICMPv6 header, no extension
  // headers), swapped as for IPv4 above.
  label(kIcmp6);
  emit(LD_ABS_B, 0, 0, 0, 54);              // ICMPv6 type
  emit(JEQ, 0, 0, 0, 0, kFallback);
  emit(BPF_JMP | BPF_JGT | BPF_K, 0, 0, 0, 4, kFallback);
  emit(LD_ABS_B, 0, 0, 0, 62 + 6);          // the quoted packet's next header
  emit(JEQ, 0, 0, 1, 6);
  emit(JNE, 0, 0, 0, 17, kFallback);
  emit(LD_ABS_W, 0, 0, 0, 62 + 24);         // r7 = fold(the quoted destination)
  emit(MOV_X, 7, 0, 0, 0);
  for (int w = 1; w < 4; w++) {
    emit(LD_ABS_W, 0, 0, 0, 62 + 24 + 4 * w);
    emit(XOR_X, 7, 0, 0, 0);
  }
  emit(LD_ABS_W, 0, 0, 0, 62 + 8);          // r8 = fold(the quoted source)
  emit(MOV_X, 8, 0, 0, 0);
  for (int w = 1; w < 4; w++) {
    emit(LD_ABS_W, 0, 0, 0, 62 + 8 + 4 * w);
    emit(XOR_X, 8, 0, 0, 0);
  }
  emit(MOV_K, 9, 0, 0, 40 + 8 + 40);        // the quoted ports at 14 + r9
  label(kPortsSwapped);
  emit(LD_IND_H, 0, 9, 0, 16);              // the quoted destination port -> fp[-8]
  emit(STX_W, 10, 0, -8, 0);
  emit(LD_IND_H, 0, 9, 0, 14);              // the quoted source port -> fp[-12]
  emit(STX_W, 10, 0, -12, 0);
  label(kLookup);
  emit(STX_W, 10, 7, -4, 0);                // fp[-4] = source address: the map key
  emit(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, mapFd);
  emit(0, 0, 0, 0, 0);                      // (second half of the 64-bit immediate)
  emit(MOV_X, 2, 10, 0, 0);
  emit(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4);
  emit(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
  emit(JEQ, 0, 0, 0, 0, kClientIsSource);   // the source is not a service address: it is the client
  // Else the client is the destination end; a local address (value 2) keeps its port in any mode.
  emit(STX_W, 10, 8, -4, 0);                // fp[-4] = destination address
  emit(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, mapFd);
  emit(0, 0, 0, 0, 0);
  emit(MOV_X, 2, 10, 0, 0);
  emit(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4);
  emit(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
  emit(JEQ, 0, 0, 0, 0, kDestination);
  emit(LDX_B, 1, 0, 0, 0);                  // the destination's kind
  emit(JEQ, 1, 0, 0, 2, kLocalAddress);
  label(kDestination);
  emit(MOV_X, 0, 8, 0, 0);
  if (addressOnly) emit(MOV_K, 1, 0, 0, 0);
  else emit(LDX_W, 1, 10, -12, 0);
  emit(BPF_JMP | BPF_JA, 0, 0, 0, 0, kHash);
  label(kLocalAddress);
  emit(MOV_X, 0, 8, 0, 0);
  emit(LDX_W, 1, 10, -12, 0);
  emit(BPF_JMP | BPF_JA, 0, 0, 0, 0, kHash);
  label(kClientIsSource);
  emit(MOV_X, 0, 7, 0, 0);
  if (addressOnly) emit(MOV_K, 1, 0, 0, 0);
  else emit(LDX_W, 1, 10, -8, 0);
  label(kHash);
  emit(BPF_ALU | BPF_XOR | BPF_X, 0, 1, 0, 0);  // address ^ port (32-bit)
  emit(BPF_ALU | BPF_MUL | BPF_K, 0, 0, 0, static_cast<int32_t>(0x9e3779b1u));
  emit(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 0, 16);  // the high half: the tun device takes it mod queues
  emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  label(kFallback);
  emit(MOV_K, 0, 0, 0, 0);                  // queue 0
  emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  for (const auto& j : jumps) p[j.first].off = static_cast<int16_t>(at[j.second] - static_cast<int>(j.first) - 1);

  char license[] = "GPL";
  static char log[65536];
  log[0] = 0;
  bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(p.data());
  attr.insn_cnt = static_cast<uint32_t>(p.size());
  attr.license = reinterpret_cast<uint64_t>(license);
  attr.log_buf = reinterpret_cast<uint64_t>(log);
  attr.log_size = sizeof log;
  attr.log_level = 1;
  int fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0) return Fail(env, std::string("BPF_PROG_LOAD (verifier: ") + log + ")", errno);
  return Napi::Number::New(env, fd);
}

// closeFd(fd): release a map or program fd.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("createSteeringMap", Napi::Function::New(env, CreateSteeringMap));
  exports.Set("steeringMapSet", Napi::Function::New(env, SteeringMapSet));
  exports.Set("loadSteeringProgram", Napi::Function::New(env, LoadSteeringProgram));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
}

}  // namespace flow_steering
