/* rawpacer.traffic._lane: a replay's planning fast lane, in C (rawpacer/traffic/lane.py drives it).
 *
 * pcap_records(data, at, big, nanos, offsets, caplens, origlens, times, /) -> (count, at, bad)
 *     The classic pcap packet records (draft-ietf-opsawg-pcap, section 5: seconds, fraction,
 *     captured length, original length, then the data) in data from byte `at`, in the file's byte
 *     order (`big`), the fraction in ns (`nanos`) or us, up to len(offsets) of them: each one's data
 *     offset, captured and original length and time (ns since the epoch) into the four int64
 *     arrays. Stops before a record the buffer does not hold whole, or at one whose captured length
 *     is over MAX_FRAME (`bad`: that length, else -1; `at`: where the record stopped at starts).
 * Lane(reader_mac, writer_mac, v4, v6, vlan, mtu, flow_of, /)
 *     The sandbox a traffic.Rewriter rewrites onto: the MACs (6 bytes each), the (writer, reader)
 *     addresses packed back to back for IPv4 (8 bytes) and IPv6 (32), or None, the 802.1Q VLAN id
 *     (-1: untagged), the link MTU, and flow_of(dst, dport) -> (flow, port): the Rewriter's one flow
 *     table, asked once for each destination the lane has not met (so flows are numbered in order
 *     of first appearance whichever path meets them).
 * Lane.run(data, offsets, caplens, links, first, stop, out, out_at, frame_at, out_offsets,
 *          out_lengths, flows, hashes, sequences, /) -> (record, out_at, frame_at)
 *     Records first .. stop-1 (data[offsets[i] : offsets[i] + caplens[i]], link type links[i]),
 *     rewritten into `out` from byte out_at, frame frame_at on, as Rewriter does, while each is a
 *     frame the fast lane takes (rewrite.py's rules, narrowed): Ethernet with at most one 802.1Q
 *     tag or raw IP; IPv4 not fragmented or IPv6 whose next header is UDP; UDP whole within the
 *     captured bytes; the IP packet within the MTU. For each: its bytes, length, flow, the
 *     payload's dg_hash and its sequence (sequence_get, -1 if none). Stops at the first record it
 *     does not take (the caller's Python path takes it, in order) or when out or the frame arrays
 *     are full; returns where it stopped. The GIL is released but to ask flow_of.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../_dghash.h"
#include "../_pymodule.h"
#include "../_sequence.h"

#define MAX_FRAME 262144 /* capture.MAX_FRAME: libpcap's WTAP_MAX_PACKET_SIZE_STANDARD */
#define PCAP_RECORD 16   /* draft-ietf-opsawg-pcap, section 5: four 32-bit words before the data */
#define ETH_HLEN 14      /* IEEE 802.3: destination, source, ethertype */
#define VLAN_HLEN 4      /* IEEE 802.1Q: the tag control information and the inner ethertype */
#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_IPV6 0x86DD
#define ETH_TYPE_8021Q 0x8100
#define VID_MASK 0x0FFF
#define LINK_ETHERNET 1 /* capture.LinkType */
#define LINK_RAW 101
#define LINK_IPV4 228
#define LINK_IPV6 229
#define IPV4_HLEN 20
#define IPV6_HLEN 40
#define UDP_HLEN 8
#define IP_PROTO_UDP 17
#define IP_MF_OFFSET 0x3FFF /* RFC 791: More Fragments and the fragment offset; either set: a fragment */

static uint32_t u32(const unsigned char *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* A writable int64 array argument with room for at least `need` values (need 0: any). */
static int64_t *int64_array(Py_buffer *b, Py_ssize_t need, const char *what)
{
    if (b->len % 8 || b->len / 8 < need) {
        PyErr_Format(PyExc_ValueError, "%s: an int64 array of at least %zd values is needed", what, need);
        return NULL;
    }
    return (int64_t *)b->buf;
}

static PyObject *pcap_records(PyObject *self, PyObject *args)
{
    Py_buffer data, b[4];
    Py_ssize_t at;
    int big, nanos;
    if (!PyArg_ParseTuple(args, "y*nppw*w*w*w*:pcap_records", &data, &at, &big, &nanos, &b[0], &b[1], &b[2], &b[3]))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t room = b[0].len / 8, count = 0;
    int64_t *arr[4];
    for (int k = 0; k < 4; k++)
        if (!(arr[k] = int64_array(&b[k], room, "pcap_records")))
            goto done;
    if (at < 0 || at > data.len) {
        PyErr_SetString(PyExc_ValueError, "pcap_records: at is outside the data");
        goto done;
    }
    const unsigned char *p = data.buf;
    int64_t to_ns = nanos ? 1 : 1000, bad = -1;
    Py_BEGIN_ALLOW_THREADS;
    while (count < room && at + PCAP_RECORD <= data.len) {
        uint32_t caplen = u32(p + at + 8, big);
        if (caplen > MAX_FRAME) {
            bad = caplen;
            break;
        }
        if (at + PCAP_RECORD + (Py_ssize_t)caplen > data.len)
            break;
        arr[0][count] = at + PCAP_RECORD;
        arr[1][count] = caplen;
        arr[2][count] = u32(p + at + 12, big);
        arr[3][count] = (int64_t)u32(p + at, big) * 1000000000 + (int64_t)u32(p + at + 4, big) * to_ns;
        at += PCAP_RECORD + caplen;
        count++;
    }
    Py_END_ALLOW_THREADS;
    result = Py_BuildValue("nnL", count, at, (long long)bad);
done:
    PyBuffer_Release(&data);
    for (int k = 0; k < 4; k++)
        PyBuffer_Release(&b[k]);
    return result;
}

/* ---- the flow table's cache: (IP version, destination, port) -> (flow, reader port) ---- */

typedef struct {
    unsigned char key[20]; /* version, 16 address bytes (IPv4's 4, zero padded), port, in use */
    int64_t flow, port;
} Slot;

typedef struct {
    PyObject_HEAD
    unsigned char reader_mac[6], writer_mac[6];
    unsigned char v4[8], v6[32];
    int has_v4, has_v6;
    long vlan;
    long mtu;
    PyObject *flow_of;
    Slot *slots;
    size_t size, used; /* size a power of two; at most half used */
} Lane;

static Slot *slot_of(Slot *slots, size_t size, const unsigned char *key)
{
    size_t at = (size_t)dg_hash(key, 19) & (size - 1);
    while (slots[at].key[19] && memcmp(slots[at].key, key, 19))
        at = (at + 1) & (size - 1);
    return &slots[at];
}

static int grow(Lane *l)
{
    size_t size = l->size ? l->size * 2 : 64;
    Slot *slots = PyMem_Calloc(size, sizeof(Slot));
    if (!slots) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < l->size; i++)
        if (l->slots[i].key[19])
            *slot_of(slots, size, l->slots[i].key) = l->slots[i];
    PyMem_Free(l->slots);
    l->slots = slots, l->size = size;
    return 0;
}

/* The flow of a destination: the cache, else flow_of asked (with the GIL) and its answer kept. */
static Slot *flow_slot(Lane *l, const unsigned char *dst, int alen, unsigned dport, PyThreadState **gil)
{
    unsigned char key[20] = {0};
    key[0] = (unsigned char)alen;
    memcpy(key + 1, dst, (size_t)alen);
    put16(key + 17, dport);
    key[19] = 1;
    Slot *s = slot_of(l->slots, l->size, key);
    if (s->key[19])
        return s;
    PyEval_RestoreThread(*gil);
    Slot *found = NULL;
    PyObject *got = PyObject_CallFunction(l->flow_of, "y#I", (const char *)dst, (Py_ssize_t)alen, dport);
    long long flow, port;
    if (got && PyArg_ParseTuple(got, "LL;flow_of returns (flow, port)", &flow, &port) &&
        (2 * (l->used + 1) <= l->size || grow(l) == 0)) {
        found = slot_of(l->slots, l->size, key);
        memcpy(found->key, key, sizeof key);
        found->flow = flow, found->port = port;
        l->used++;
    }
    Py_XDECREF(got);
    *gil = PyEval_SaveThread();
    return found;
}

static void lane_dealloc(Lane *l)
{
    Py_XDECREF(l->flow_of);
    PyMem_Free(l->slots);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static int fixed(PyObject *o, unsigned char *out, Py_ssize_t n, int *given, const char *what)
{
    if (o == Py_None && given) {
        *given = 0;
        return 0;
    }
    if (!PyBytes_Check(o) || PyBytes_GET_SIZE(o) != n) {
        PyErr_Format(PyExc_ValueError, "Lane: %s must be %zd bytes", what, n);
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(o), (size_t)n);
    if (given)
        *given = 1;
    return 0;
}

static int lane_init(Lane *l, PyObject *args, PyObject *kwds)
{
    PyObject *rmac, *wmac, *v4, *v6, *flow_of;
    if (!PyArg_ParseTuple(args, "OOOOllO:Lane", &rmac, &wmac, &v4, &v6, &l->vlan, &l->mtu, &flow_of))
        return -1;
    if (fixed(rmac, l->reader_mac, 6, NULL, "reader_mac") < 0 || fixed(wmac, l->writer_mac, 6, NULL, "writer_mac") < 0 ||
        fixed(v4, l->v4, 8, &l->has_v4, "v4") < 0 || fixed(v6, l->v6, 32, &l->has_v6, "v6") < 0)
        return -1;
    if (!PyCallable_Check(flow_of)) {
        PyErr_SetString(PyExc_TypeError, "Lane: flow_of must be callable");
        return -1;
    }
    if (l->vlan > VID_MASK) {
        PyErr_SetString(PyExc_ValueError, "Lane: vlan must be -1 (untagged) or 0-4095");
        return -1;
    }
    Py_XSETREF(l->flow_of, Py_NewRef(flow_of));
    return l->slots ? 0 : grow(l);
}

/* ---- RFC 1624 ---- */

/* The ones'-complement sum of n bytes (n even) as rawpacer.headers.checksum.ones_sum gives it:
 * 0 only when every word is 0, else 1..0xFFFF (RFC 1071's end-around carry). */
static unsigned ones_sum(const unsigned char *p, int n)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i += 2)
        s += be16(p + i);
    return s ? (unsigned)((s - 1) % 0xFFFF + 1) : 0;
}

static unsigned fold(uint64_t s) { return s ? (unsigned)((s - 1) % 0xFFFF + 1) : 0; }

/* RFC 1624, eqn. 3, for a run of words changed from old to new: HC' = ~(~HC + ~m + m'), with ~m
 * summed over the run as 0xFFFF - ones_sum(old): traffic.rewrite.update_checksum's arithmetic. */
static unsigned update(unsigned hc, unsigned old_sum, unsigned new_sum)
{
    return ~fold((~hc & 0xFFFF) + (0xFFFF - old_sum) + new_sum) & 0xFFFF;
}

/* Where a record's IP header starts and its version, when the lane takes it (else -1). */
static int ip_start(const unsigned char *p, int64_t caplen, int64_t link, int *version, unsigned *tci, int *tagged)
{
    *tagged = 0;
    if (link == LINK_ETHERNET) {
        if (caplen < ETH_HLEN)
            return -1;
        unsigned type = be16(p + 12);
        int start = ETH_HLEN;
        if (type == ETH_TYPE_8021Q) { /* IEEE 802.1Q: one tag; a second (or an 802.1ad S-tag) is Python's */
            if (caplen < ETH_HLEN + VLAN_HLEN)
                return -1;
            *tci = be16(p + 14), *tagged = 1;
            type = be16(p + 16);
            start += VLAN_HLEN;
        }
        *version = type == ETH_TYPE_IPV4 ? 4 : type == ETH_TYPE_IPV6 ? 6 : 0;
        return *version ? start : -1;
    }
    if (caplen < 1)
        return -1;
    *version = link == LINK_IPV4 ? 4 : link == LINK_IPV6 ? 6 : link == LINK_RAW ? p[0] >> 4 : 0;
    return *version == 4 || *version == 6 ? 0 : -1;
}

static PyObject *lane_run(Lane *l, PyObject *args)
{
    Py_buffer data, bo, bc, bl, out, fo, fl, ff, fh, fs;
    Py_ssize_t first, stop, out_at, frame_at;
    if (!PyArg_ParseTuple(args, "y*y*y*y*nnw*nnw*w*w*w*w*:run", &data, &bo, &bc, &bl, &first, &stop, &out, &out_at,
                          &frame_at, &fo, &fl, &ff, &fh, &fs))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t frames = fo.len / 8;
    int64_t *offsets = int64_array(&bo, stop, "run: offsets"), *caplens = int64_array(&bc, stop, "run: caplens");
    int64_t *links = int64_array(&bl, stop, "run: links");
    int64_t *o_off = int64_array(&fo, 0, "run"), *o_len = int64_array(&fl, frames, "run");
    int64_t *o_flow = int64_array(&ff, frames, "run"), *o_hash = int64_array(&fh, frames, "run");
    int64_t *o_seq = int64_array(&fs, frames, "run");
    if (!offsets || !caplens || !links || !o_off || !o_len || !o_flow || !o_hash || !o_seq)
        goto done;
    if (first < 0 || out_at < 0 || out_at > out.len || frame_at < 0) {
        PyErr_SetString(PyExc_ValueError, "run: first, out_at and frame_at must be within the arrays");
        goto done;
    }
    const unsigned char *base = data.buf;
    unsigned char *o = out.buf;
    int failed = 0;
    Py_ssize_t i = first;
    PyThreadState *gil = PyEval_SaveThread();
    for (; i < stop && frame_at < frames; i++) {
        int64_t caplen = caplens[i];
        if (offsets[i] < 0 || caplen < 0 || offsets[i] + caplen > data.len)
            break; /* not a record of this buffer: Python's path says what is wrong */
        const unsigned char *p = base + offsets[i];
        int version, tagged;
        unsigned tci = 0;
        int ip = ip_start(p, caplen, links[i], &version, &tci, &tagged);
        if (ip < 0 || caplen < ip + (version == 4 ? IPV4_HLEN : IPV6_HLEN) || p[ip] >> 4 != version)
            break;
        int64_t end, udp;
        if (version == 4) { /* RFC 791: IHL in 32-bit words, at least 5; total length; not a fragment */
            int ihl = (p[ip] & 0xF) * 4;
            if (!l->has_v4 || p[ip + 9] != IP_PROTO_UDP || ihl < IPV4_HLEN || be16(p + ip + 6) & IP_MF_OFFSET)
                break;
            end = ip + be16(p + ip + 2), udp = ip + ihl;
        } else { /* RFC 8200, section 3: UDP right behind the fixed header (extension headers are Python's) */
            if (!l->has_v6 || p[ip + 6] != IP_PROTO_UDP)
                break;
            end = ip + IPV6_HLEN + be16(p + ip + 4), udp = ip + IPV6_HLEN;
        }
        if (end > caplen || udp + UDP_HLEN > end) /* cut by the snapshot length: Python's, counted */
            break;
        int link_len = ETH_HLEN + (l->vlan >= 0 ? VLAN_HLEN : 0);
        int64_t length = link_len + caplen - ip;
        if (length - link_len > l->mtu) /* over the MTU: fitting is Python's (fitframe) */
            break;
        if (out_at + length > out.len)
            break;
        int alen = version == 4 ? 4 : 16;
        int addr_at = version == 4 ? 12 : 8; /* RFC 791 / RFC 8200: source then destination */
        unsigned dport = be16(p + udp + 2);
        Slot *s = flow_slot(l, p + ip + addr_at + alen, alen, dport, &gil);
        if (!s) {
            failed = 1;
            break;
        }
        unsigned char *f = o + out_at;
        memcpy(f, l->reader_mac, 6);
        memcpy(f + 6, l->writer_mac, 6);
        if (l->vlan >= 0) { /* the sandbox's tag, the captured tag's priority and DEI kept */
            put16(f + 12, ETH_TYPE_8021Q);
            put16(f + 14, ((tagged ? tci : 0) & ~(unsigned)VID_MASK) | (unsigned)l->vlan);
        }
        put16(f + link_len - 2, version == 4 ? ETH_TYPE_IPV4 : ETH_TYPE_IPV6);
        memcpy(f + link_len, p + ip, (size_t)(caplen - ip));
        unsigned char *g = f + link_len - ip; /* g[k]: the output byte of input byte p[k] */
        const unsigned char *pair = version == 4 ? l->v4 : l->v6;
        unsigned old_addrs = ones_sum(p + ip + addr_at, 2 * alen), new_addrs = ones_sum(pair, 2 * alen);
        memcpy(g + ip + addr_at, pair, (size_t)(2 * alen));
        if (version == 4) /* RFC 1624: the header checksum over the changed addresses */
            put16(g + ip + 10, update(be16(p + ip + 10), old_addrs, new_addrs));
        put16(g + udp + 2, (unsigned)s->port);
        unsigned checksum = be16(p + udp + 6);
        if (checksum) { /* RFC 768: 0 is "no checksum", left so; a computed 0 is sent as 0xFFFF */
            unsigned char port_word[2];
            put16(port_word, (unsigned)s->port);
            uint64_t old_sum = (uint64_t)old_addrs + dport, new_sum = (uint64_t)new_addrs + (unsigned)s->port;
            unsigned c = update(checksum, fold(old_sum), fold(new_sum));
            put16(g + udp + 6, c ? c : 0xFFFF);
        }
        int64_t udp_end = udp + be16(p + udp + 4); /* a UDP length past the IP packet is the sender's error */
        int64_t pay_end = udp_end < end ? udp_end : end;
        int64_t pay_len = pay_end > udp + UDP_HLEN ? pay_end - udp - UDP_HLEN : 0;
        const unsigned char *payload = g + udp + UDP_HLEN;
        o_off[frame_at] = out_at, o_len[frame_at] = length;
        o_flow[frame_at] = s->flow;
        o_hash[frame_at] = (int64_t)dg_hash(payload, (size_t)pay_len);
        o_seq[frame_at] = pay_len >= SEQUENCE_BYTES ? sequence_get(payload) : -1;
        out_at += length, frame_at++;
    }
    PyEval_RestoreThread(gil);
    if (!failed)
        result = Py_BuildValue("nnn", i, out_at, frame_at);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&bo);
    PyBuffer_Release(&bc);
    PyBuffer_Release(&bl);
    PyBuffer_Release(&out);
    PyBuffer_Release(&fo);
    PyBuffer_Release(&fl);
    PyBuffer_Release(&ff);
    PyBuffer_Release(&fh);
    PyBuffer_Release(&fs);
    return result;
}

static PyObject *lane_flows(Lane *l, void *closure) { return PyLong_FromSize_t(l->used); }

static PyGetSetDef lane_getset[] = {
    GETTER("flows", lane_flows, "Destinations the lane has met (its cache of the flow table)."),
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef lane_methods[] = {
    {"run", (PyCFunction)lane_run, METH_VARARGS,
     "run(data, offsets, caplens, links, first, stop, out, out_at, frame_at, out_offsets, out_lengths, flows, "
     "hashes, sequences, /) -> (record, out_at, frame_at): the records the lane takes, rewritten."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LaneType = {
    TYPE_HEAD("rawpacer.traffic._lane.Lane", Lane,
              "Lane(reader_mac, writer_mac, v4, v6, vlan, mtu, flow_of, /): a Rewriter's sandbox, in C."),
    LIFECYCLE(lane_init, lane_dealloc),
    .tp_methods = lane_methods,
    .tp_getset = lane_getset,
};

static PyMethodDef methods[] = {
    {"pcap_records", (PyCFunction)pcap_records, METH_VARARGS,
     "pcap_records(data, at, big, nanos, offsets, caplens, origlens, times, /) -> (count, at, bad)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = MODULE_DEF("rawpacer.traffic._lane", NULL, methods);

PyMODINIT_FUNC PyInit__lane(void)
{
    return module_create(&module, NULL, (PyTypeObject *[]){&LaneType, NULL});
}
