/* rawpacer's datagram hash: a replay knows each datagram by it, on the planning side (what should
 * arrive) and in the recorder (what did). rawpacer/readers/replaymatch.py holds the pure-Python
 * twin and the reasons; the two agree on every input (tests/unit/test_datagram_hash.py).
 *
 * Four lanes take the 8-byte little-endian words of each 32-byte block in turn (independent, so
 * their multiplies overlap: ~0.15 us for 1500 bytes), the words after the last whole block go to
 * lanes 0, 1, 2, the 1-7 tail bytes (zero-padded) to lane 3, and the lanes are then folded into one
 * state that started from the length. Every step (xor a word, then dg_mix) is a bijection of a
 * lane's state, so two datagrams of one length that differ in one word never share a hash. Not a
 * cryptographic hash: it finds corruption and duplicates, not tampering. */
#ifndef RAWPACER_DGHASH_H
#define RAWPACER_DGHASH_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DG_SEED 0x9E3779B97F4A7C15ULL /* 2^64 / golden ratio, odd */
#define DG_MUL1 0xBF58476D1CE4E5B9ULL /* SplitMix64's finaliser constants (odd: multiplying is a bijection) */
#define DG_MUL2 0x94D049BB133111EBULL

static inline uint64_t dg_mix(uint64_t x) {
    x *= DG_MUL1;
    x ^= x >> 31;
    x *= DG_MUL2;
    x ^= x >> 29;
    return x;
}

static inline uint64_t dg_word(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

static inline uint64_t dg_hash(const unsigned char *p, size_t n) {
    uint64_t lane[4] = {DG_SEED, DG_SEED * 3, DG_SEED * 5, DG_SEED * 7};
    size_t at = 0;
    for (; at + 32 <= n; at += 32)
        for (int i = 0; i < 4; i++) lane[i] = dg_mix(lane[i] ^ dg_word(p + at + 8 * i));
    for (int i = 0; at + 8 <= n; at += 8, i++) lane[i] = dg_mix(lane[i] ^ dg_word(p + at));
    if (at < n) {
        unsigned char tail[8] = {0};
        memcpy(tail, p + at, n - at);
        lane[3] = dg_mix(lane[3] ^ dg_word(tail));
    }
    uint64_t h = dg_mix(DG_SEED ^ (uint64_t)n);
    for (int i = 0; i < 4; i++) h = dg_mix(h ^ lane[i]);
    return h;
}
#endif
