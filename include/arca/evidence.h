/* evidence.h: software-mode (sim) evidence signed by arca-las.
 *
 * Fixed binary layout, little endian, exactly ARCA_SIM_EVIDENCE_LEN bytes:
 *   0   magic "ARCAEV01"            8
 *   8   platform (1 = sim)          u32
 *   12  flags                       u32 (bits below; any other bit set is refused)
 *   16  timestamp (unix seconds)    u64
 *   24  pid of the measured process u32
 *   28  uid of the measured process u32
 *   32  measurement                 32
 *   64  report data                 64
 *   128 LAS platform public key     32 (Ed25519)
 *   160 signature over bytes 0..159 64
 * The signature proves only that a LAS holding that key produced it; the
 * verifier must check the key against its list of trusted LAS keys.
 *
 * Flags:
 *   bit 0 ARCA_SIM_FLAG_PTRACE_PROTECTED: arca-las started the process
 *         through the launch channel and, when it signed, Yama's
 *         kernel.yama.ptrace_scope was at least 1, so no other process of
 *         the same user could ptrace it or write its memory before its
 *         shield made it non-dumpable. Never set on evidence for a caller
 *         of the socket (uid 0, "ALR1"). CAS refuses evidence without it
 *         unless the session tolerates no-ptrace-protection.
 *   bit 1 ARCA_SIM_FLAG_SECRET_MEMORY: when arca-las signed, the process had
 *         at least one mapping named "/secretmem (deleted)" in
 *         /proc/PID/maps: memfd_secret(2) worked for it on this host, and
 *         its (measured) shield keeps its heap there, out of reach of
 *         /proc/PID/mem, ptrace and core dumps. Without it root could read
 *         the program's memory. Never set on evidence for a caller of the
 *         socket. CAS refuses evidence without it unless the session
 *         tolerates no-secret-memory. */
#ifndef ARCA_EVIDENCE_H
#define ARCA_EVIDENCE_H

#include <stdint.h>
#include <stddef.h>
#include "arca/err.h"

#define ARCA_SIM_EVIDENCE_LEN 224
#define ARCA_SIM_PLATFORM 1
#define ARCA_SIM_FLAG_PTRACE_PROTECTED 0x1u
#define ARCA_SIM_FLAG_SECRET_MEMORY 0x2u
#define ARCA_SIM_FLAGS_KNOWN (ARCA_SIM_FLAG_PTRACE_PROTECTED | ARCA_SIM_FLAG_SECRET_MEMORY)

struct arca_sim_evidence {
	uint64_t timestamp;
	uint32_t pid, uid;
	uint32_t flags; /* ARCA_SIM_FLAG_*; sign refuses unknown bits (ARCA_EINVAL) */
	uint8_t measurement[32];
	uint8_t report_data[64];
	uint8_t las_pub[32];
};

int arca_sim_evidence_sign(const struct arca_sim_evidence *ev, const uint8_t las_priv[32],
			   uint8_t out[ARCA_SIM_EVIDENCE_LEN]) ARCA_MUST_CHECK;
/* Parses exactly ARCA_SIM_EVIDENCE_LEN bytes and verifies the signature
 * with the embedded key. ARCA_EPARSE (also for a flag bit this version
 * does not know) / ARCA_ECRYPTO with a reason in e. */
int arca_sim_evidence_verify(const uint8_t *in, size_t len, struct arca_sim_evidence *out,
			     struct arca_errbuf *e) ARCA_MUST_CHECK;

/* LAS wire protocol: an evidence request is
 * request  = "ALR1" || report data (64)                    exactly 68 bytes
 * response = status u8 (0 = ok) || u16le length || payload
 *            ok: payload = evidence; else payload = reason (text)
 * It is answered in two places (CONTRACTS.md "Trusted launch"):
 *  - on the channel arca-las hands a program it launched (ARCA_LAS_FD):
 *    once, for that program, then the channel is closed;
 *  - on the public socket only for a caller with uid 0 (arca-cas
 *    attesting itself); anyone else is refused. The launch request that
 *    shares the public socket is in las_launch.h. */
#define ARCA_LAS_REQ_MAGIC "ALR1"
#define ARCA_LAS_REQ_LEN 68
/* Room for the largest hardware envelope (evidence_hw.h) with a u16
 * length; a length above it is refused as malformed. */
#define ARCA_LAS_MAX_RESP (3 + (60u << 10))

/* Connects to the LAS socket (close-on-exec); timeout_s bounds connect and
 * every later send and receive on it. Returns the fd or ARCA_E*. */
int arca_las_connect(const char *socket_path, int timeout_s, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Connects to the socket, sends the request, returns the evidence (caller
 * frees *ev with free()). On refusal the LAS's reason is in e. */
int arca_las_request(const char *socket_path, const uint8_t report_data[64], uint8_t **ev, size_t *evlen,
		     struct arca_errbuf *e) ARCA_MUST_CHECK;
/* The same request over an already connected fd (the launch channel).
 * Takes fd: it is closed on every path. */
int arca_las_request_fd(int fd, const uint8_t report_data[64], uint8_t **ev, size_t *evlen,
			struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
