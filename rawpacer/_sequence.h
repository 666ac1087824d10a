/* The sequence field of a stream datagram, shared by rawpacer._readloop (which checks it) and
 * rawpacer._pace (which stamps it): rawpacer.headers.sequence.sequence_bytes is the reference. Bytes 0-5
 * are the sequence (48 bits, big-endian), bytes 6-7 the one's complement of the one's-complement
 * sum of those three 16-bit words, so the 8 bytes always sum to 0xFFFF and leave a UDP checksum
 * (RFC 1071) unchanged whatever sequence they carry. */
#ifndef RAWPACER_SEQUENCE_H
#define RAWPACER_SEQUENCE_H
#include <stdint.h>

#define SEQUENCE_BYTES 8

static inline void sequence_put(unsigned char *out, uint64_t seq) {
    uint32_t total = (uint32_t)((seq >> 32) & 0xFFFF) + (uint32_t)((seq >> 16) & 0xFFFF) + (uint32_t)(seq & 0xFFFF);
    total = (total & 0xFFFF) + (total >> 16);
    total = (total & 0xFFFF) + (total >> 16);
    uint16_t check = (uint16_t)~total;
    for (int i = 0; i < 6; i++) out[i] = (unsigned char)(seq >> (8 * (5 - i)));
    out[6] = (unsigned char)(check >> 8);
    out[7] = (unsigned char)check;
}

/* The sequence in the first 8 bytes of data, or -1 when they carry none (the check word is wrong). */
static inline int64_t sequence_get(const unsigned char *data) {
    uint64_t seq = 0;
    for (int i = 0; i < 6; i++) seq = seq << 8 | data[i];
    unsigned char want[SEQUENCE_BYTES];
    sequence_put(want, seq);
    return want[6] == data[6] && want[7] == data[7] ? (int64_t)seq : -1;
}
#endif
