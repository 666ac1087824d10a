/* A single-producer, single-consumer ring shared with the kernel, in libxdp's shape (xsk.h):
 * reserve / submit on a ring we produce (AF_XDP's TX ring), peek / release on a ring we consume
 * (its completion ring), each side keeping cached copies of both indices so the shared words are
 * read only when the cache runs out. Ordering follows the kernel's side (net/xdp/xsk_queue.h):
 * the entries are written before the producer index is stored with release semantics, and read
 * after it is loaded with acquire semantics; the consumer index likewise. __atomic builtins, so
 * the rule holds on any CPU, not only x86's stores-in-order. Indices are free-running u32s. */
#ifndef RAWPACER_RING_H
#define RAWPACER_RING_H
#include <stdint.h>

typedef struct {
    uint32_t *producer, *consumer, *flags;
    unsigned char *entries;
    uint32_t size, mask, cached_prod, cached_cons;
} XRing;

/* The producer side's view: everything up to consumer + size is free. */
static inline void xring_init_prod(XRing *r)
{
    r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_RELAXED);
    r->cached_cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE) + r->size;
}

static inline void xring_init_cons(XRing *r)
{
    r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
    r->cached_cons = __atomic_load_n(r->consumer, __ATOMIC_RELAXED);
}

/* Free entries, at least `nb` if the consumer has freed them (the shared index read only then). */
static inline uint32_t xring_free(XRing *r, uint32_t nb)
{
    uint32_t free_entries = r->cached_cons - r->cached_prod;
    if (free_entries >= nb)
        return free_entries;
    r->cached_cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE) + r->size;
    return r->cached_cons - r->cached_prod;
}

/* Reserve up to `nb` entries from *idx on (fewer when the ring is fuller); how many. */
static inline uint32_t xring_reserve(XRing *r, uint32_t nb, uint32_t *idx)
{
    uint32_t free_entries = xring_free(r, nb);
    if (nb > free_entries)
        nb = free_entries;
    *idx = r->cached_prod;
    r->cached_prod += nb;
    return nb;
}

/* Publish `nb` reserved entries, written before this call: the release store of the producer. */
static inline void xring_submit(XRing *r, uint32_t nb)
{
    __atomic_store_n(r->producer, *r->producer + nb, __ATOMIC_RELEASE);
}

/* Entries ready to consume, at most `nb` (the shared producer index read only when none are cached). */
static inline uint32_t xring_avail(XRing *r, uint32_t nb)
{
    uint32_t entries = r->cached_prod - r->cached_cons;
    if (entries == 0) {
        r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
        entries = r->cached_prod - r->cached_cons;
    }
    return entries > nb ? nb : entries;
}

/* Take up to `nb` entries from *idx on to read; how many. */
static inline uint32_t xring_peek(XRing *r, uint32_t nb, uint32_t *idx)
{
    uint32_t entries = xring_avail(r, nb);
    if (entries) {
        *idx = r->cached_cons;
        r->cached_cons += entries;
    }
    return entries;
}

/* Hand `nb` peeked entries back, read before this call: the release store of the consumer. */
static inline void xring_release(XRing *r, uint32_t nb)
{
    __atomic_store_n(r->consumer, *r->consumer + nb, __ATOMIC_RELEASE);
}

/* Entry idx's bytes (`width` bytes an entry). */
static inline unsigned char *xring_entry(const XRing *r, uint32_t idx, uint32_t width)
{
    return r->entries + (size_t)(idx & r->mask) * width;
}

/* Everything produced has been consumed (the producer's check that the kernel took its work). */
static inline int xring_drained(const XRing *r)
{
    return __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE) == __atomic_load_n(r->producer, __ATOMIC_RELAXED);
}
#endif
