/* rawpacer._readloop: the readers' fast path, one C loop that receives, checks and counts.
 *
 * Counter(expected, slot_size, slots) is the C twin of rawpacer.readers.core.Counter: the same
 * begin / datagram / set_per_port / tallies / arrival_buffers / complete, the same rules, so the
 * two are tested against each other on synthetic events (tests/unit/test_reader_verdicts.py).
 * attach(socks, ctl_fd, batch, spin, linger_ns, idle_spin_ns) and run(...) add the socket loop: one epoll over
 * every reader socket and the control socket, recvmmsg(2) batches per ready socket, every byte of
 * every datagram compared with its slot in the shared expected buffer (memcmp, no Python object
 * per datagram), the kernel RX timestamp (SO_TIMESTAMPNS, socket(7)) kept when asked for. run()
 * returns to Python only for a command on the control socket or when an op ends.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "_pymodule.h"
#include "_rxstamp.h"
#include "_sequence.h"

#define NEVER ((int64_t)1 << 62)
/* begin()'s sequences for a shaped stream (rawpacer.traffic.pool): a datagram of any length up to the
 * expected size matches when it equals that many leading bytes of its slot's message; counted per length. */
#define PREFIX (-1)
#define CTL_TAG UINT32_MAX
#define MAX_EVENTS 1024
#define DRAIN_ROUNDS 16 /* recvmmsg batches taken from one socket per wake-up before serving the others */
#define CMSG_ROOM 64    /* one SCM_TIMESTAMPNS (16-byte timespec) with its header, and slack */

enum { COMMAND = 0, COMPLETE = 1, DEADLINE = 2, SILENCE = 3 };
/* attach()'s spin modes (rawpacer.readers.tuning): sleep in epoll_wait; poll while an op is open (and
 * idle_spin_ns after it); or sleep until the open op's first datagram, then poll until it is complete. */
enum { SLEEP = 0, SPIN = 1, POLL_OP = 2 };
enum { RX_NS, SLOT, MATCH, COLUMNS }; /* the arrival columns: int64 rx_ns, int32 slot, uint8 match */
static const size_t ITEM[COLUMNS] = {sizeof(int64_t), sizeof(int32_t), sizeof(uint8_t)};
#define FIRST_ROOM 65536 /* arrivals the columns hold before their first growth */

/* One arrival column: its bytes, and how many views hold them. A memoryview from arrival_buffers()
 * keeps its column alive, and the Counter never reallocates, reuses or frees a column a view still
 * holds (it starts a new one), so a view stays valid for as long as it lives. */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t shown;   /* bytes the next view exports */
    Py_ssize_t exports; /* views alive over data */
} Column;

static PyTypeObject ColumnType;

/* One slot's sequences in a sequenced stream, counted as RFC 4737 counts a stream (the twin of
 * rawpacer.readers.core.Order). */
typedef struct {
    uint8_t *seen;           /* one bit per sequence that has arrived */
    int64_t seen_bytes;      /* allocated bytes of seen */
    int64_t next_expected;   /* RFC 4737 3.3's NextExp */
    int64_t arrived;         /* first copies so far: the next one's receive index */
    int64_t *gaps;           /* pairs: first sequence an in-order arrival jumped past, its index */
    int64_t gaps_len, gaps_room;
    int64_t repeats, reordered, extent;
} Order;

typedef struct {
    PyObject_HEAD
    Py_buffer expected;
    Py_ssize_t slot_size;
    Py_ssize_t slots;
    /* the open op */
    int active, timestamps;
    Py_ssize_t expected_size;
    int64_t per_port, reached;
    int64_t *received, *mismatched, *late, *late_next;
    int64_t sequences; /* > 0: a sequenced stream, sequences below this; PREFIX: a shaped stream */
    int64_t *by_length; /* a shaped stream's datagrams per length: received at [2*len], matching at [2*len+1] */
    Order *order;      /* per slot, allocated with the Counter */
    /* arrivals of the open op (kept when timestamps are on); NULL columns until the first */
    Column *columns[COLUMNS];
    Py_ssize_t arrivals, arrivals_room;
    /* the socket loop */
    int epfd, ctl_fd, spin;
    int *fds;
    unsigned int batch;
    int64_t linger_ns, idle_spin_ns, spin_until;
    struct mmsghdr *msgs;
    struct iovec *iov;
    char *bufs;
    char *cmsgs;
    struct epoll_event events[MAX_EVENTS];
    int64_t busy_ns, checked, first_take_ns, last_arrival_ns;
} Counter;

static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* Busy time is CPU time, so a reader preempted by other work on a shared machine is not charged for it. */
static int64_t cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

/* ---- arrival columns ------------------------------------------------------------------------ */

static Column *column_new(size_t bytes) {
    Column *column = PyObject_New(Column, &ColumnType);
    if (column == NULL) return NULL;
    column->shown = 0;
    column->exports = 0;
    column->data = PyMem_RawMalloc(bytes);
    if (column->data == NULL) {
        Py_DECREF(column);
        return NULL;
    }
    return column;
}

static void Column_dealloc(Column *self) {
    PyMem_RawFree(self->data);
    PyObject_Free(self);
}

static int Column_getbuffer(Column *self, Py_buffer *view, int flags) {
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->data, self->shown, 1, flags) < 0) return -1;
    self->exports++;
    return 0;
}

static void Column_releasebuffer(Column *self, Py_buffer *view) { self->exports--; }

static PyBufferProcs Column_as_buffer = {
    .bf_getbuffer = (getbufferproc)Column_getbuffer,
    .bf_releasebuffer = (releasebufferproc)Column_releasebuffer,
};

static PyTypeObject ColumnType = {
    TYPE_HEAD("rawpacer._readloop.ArrivalColumn", Column,
              "one column of a Counter's arrivals, kept alive by the memoryviews over it"),
    .tp_dealloc = (destructor)Column_dealloc,
    .tp_as_buffer = &Column_as_buffer,
};

/* Room for twice the arrivals: a column no view holds is reallocated, a held one is copied into a
 * new column and left to its views. 0, or -1 with MemoryError set (the room is then unchanged). */
static int grow_arrivals(Counter *self) {
    Py_ssize_t room = self->arrivals_room ? self->arrivals_room * 2 : FIRST_ROOM;
    for (int i = 0; i < COLUMNS; i++) {
        size_t bytes = (size_t)room * ITEM[i];
        Column *old = self->columns[i];
        if (old != NULL && old->exports == 0) {
            char *data = PyMem_RawRealloc(old->data, bytes);
            if (data == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            old->data = data;
            continue;
        }
        Column *fresh = column_new(bytes);
        if (fresh == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (old != NULL) memcpy(fresh->data, old->data, (size_t)self->arrivals * ITEM[i]);
        self->columns[i] = fresh;
        Py_XDECREF(old);
    }
    self->arrivals_room = room;
    return 0;
}

/* A new op's arrivals go where no view looks: columns a view holds are left to it. */
static void release_held_columns(Counter *self) {
    int held = 0;
    for (int i = 0; i < COLUMNS; i++) held |= self->columns[i] != NULL && self->columns[i]->exports > 0;
    if (!held) return;
    for (int i = 0; i < COLUMNS; i++) Py_CLEAR(self->columns[i]);
    self->arrivals_room = 0; /* the next arrival grows fresh columns */
}

/* ---- counting (the twin of core.Counter) ------------------------------------------------- */

/* Count one matching datagram carrying seq on its slot's Order; -1 (MemoryError set) when a table cannot grow. */
static int order_take(Order *o, int64_t seq) {
    int64_t byte = seq >> 3;
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (byte >= o->seen_bytes) {
        int64_t room = o->seen_bytes * 2 > byte + 1 ? o->seen_bytes * 2 : byte + 1;
        uint8_t *seen = PyMem_RawRealloc(o->seen, (size_t)room);
        if (seen == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memset(seen + o->seen_bytes, 0, (size_t)(room - o->seen_bytes));
        o->seen = seen;
        o->seen_bytes = room;
    }
    if (o->seen[byte] & bit) {
        o->repeats++; /* RFC 4737 3.3: only the first copy is evaluated */
        return 0;
    }
    o->seen[byte] |= bit;
    int64_t index = o->arrived++;
    if (seq >= o->next_expected) {
        if (seq > o->next_expected) {
            if (o->gaps_len == o->gaps_room) {
                int64_t room = o->gaps_room ? o->gaps_room * 2 : 16;
                int64_t *gaps = PyMem_RawRealloc(o->gaps, (size_t)room * 2 * sizeof(int64_t));
                if (gaps == NULL) {
                    PyErr_NoMemory();
                    return -1;
                }
                o->gaps = gaps;
                o->gaps_room = room;
            }
            o->gaps[2 * o->gaps_len] = o->next_expected;
            o->gaps[2 * o->gaps_len + 1] = index;
            o->gaps_len++;
        }
        o->next_expected = seq + 1;
        return 0;
    }
    /* Reordered (RFC 4737 3.3); passed over by the in-order arrival whose gap holds it, the
     * earliest arrival with a higher sequence (4.2.1's j): extent = index - j. */
    o->reordered++;
    int64_t lo = 0, hi = o->gaps_len; /* the last gap starting at or below seq */
    while (hi - lo > 1) {
        int64_t mid = (lo + hi) / 2;
        if (o->gaps[2 * mid] <= seq) lo = mid;
        else hi = mid;
    }
    int64_t extent = index - o->gaps[2 * lo + 1];
    if (extent > o->extent) o->extent = extent;
    return 0;
}

static void order_reset(Order *o) {
    if (o->seen_bytes) memset(o->seen, 0, (size_t)o->seen_bytes);
    o->next_expected = o->arrived = o->gaps_len = o->repeats = o->reordered = o->extent = 0;
}

/* Count one datagram on a valid slot; -1 (MemoryError set) only when the arrival columns cannot grow. */
static inline int count_one(Counter *self, Py_ssize_t slot, const char *data, Py_ssize_t len, int64_t rx_ns) {
    if (!self->active) {
        self->late_next[slot]++;
        return 0;
    }
    Py_ssize_t size = self->expected_size;
    const char *want = (const char *)self->expected.buf + slot * self->slot_size;
    int match;
    if (self->sequences == PREFIX) {
        match = len <= size && memcmp(data, want, (size_t)len) == 0;
        Py_ssize_t at = len <= self->slot_size ? len : self->slot_size + 1; /* longer: one bin */
        self->by_length[2 * at]++;
        self->by_length[2 * at + 1] += match;
    } else if (self->sequences) {
        int64_t seq = len == size ? sequence_get((const unsigned char *)data) : -1;
        match = seq >= 0 && seq < self->sequences &&
                memcmp(data + SEQUENCE_BYTES, want + SEQUENCE_BYTES, (size_t)(size - SEQUENCE_BYTES)) == 0;
        if (match && order_take(&self->order[slot], seq) < 0) return -1;
    } else {
        match = len == size && memcmp(data, want, (size_t)size) == 0;
    }
    int64_t received = ++self->received[slot];
    if (received == self->per_port) self->reached++;
    if (!match) self->mismatched[slot]++;
    if (self->timestamps) {
        if (self->arrivals == self->arrivals_room && grow_arrivals(self) < 0) return -1;
        ((int64_t *)self->columns[RX_NS]->data)[self->arrivals] = rx_ns;
        ((int32_t *)self->columns[SLOT]->data)[self->arrivals] = (int32_t)slot;
        ((uint8_t *)self->columns[MATCH]->data)[self->arrivals] = (uint8_t)match;
        self->arrivals++;
    }
    return 0;
}

static void Counter_dealloc(Counter *self) {
    if (self->epfd >= 0) close(self->epfd);
    FREE_ALL(PyMem_RawFree, self->received, self->mismatched, self->late, self->late_next, self->by_length);
    if (self->order != NULL) {
        for (Py_ssize_t i = 0; i < self->slots; i++) {
            FREE_ALL(PyMem_RawFree, self->order[i].seen, self->order[i].gaps);
        }
        PyMem_RawFree(self->order);
    }
    for (int i = 0; i < COLUMNS; i++) Py_CLEAR(self->columns[i]);
    FREE_ALL(PyMem_RawFree, self->fds, self->msgs, self->iov, self->bufs, self->cmsgs);
    if (self->expected.obj != NULL) PyBuffer_Release(&self->expected);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Counter_init(Counter *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"expected", "slot_size", "slots", NULL};
    Py_buffer expected;
    Py_ssize_t slot_size, slots;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*nn", names, &expected, &slot_size, &slots)) return -1;
    if (self->expected.obj != NULL) {
        PyBuffer_Release(&expected);
        PyErr_SetString(PyExc_TypeError, "Counter is already initialised");
        return -1;
    }
    if (slot_size < 1 || slots < 1 || slots > INT32_MAX || expected.len / slot_size < slots) {
        PyErr_Format(PyExc_ValueError, "%zd slots of %zd bytes do not fit an expected buffer of %zd bytes", slots,
                     slot_size, expected.len);
        PyBuffer_Release(&expected);
        return -1;
    }
    self->expected = expected;
    self->slot_size = slot_size;
    self->slots = slots;
    self->per_port = NEVER;
    self->expected_size = slot_size;
    self->epfd = -1;
    self->ctl_fd = -1;
    self->received = PyMem_RawCalloc((size_t)slots, sizeof(int64_t));
    self->mismatched = PyMem_RawCalloc((size_t)slots, sizeof(int64_t));
    self->late = PyMem_RawCalloc((size_t)slots, sizeof(int64_t));
    self->late_next = PyMem_RawCalloc((size_t)slots, sizeof(int64_t));
    self->order = PyMem_RawCalloc((size_t)slots, sizeof(Order));
    self->by_length = PyMem_RawCalloc((size_t)slot_size + 2, 2 * sizeof(int64_t)); /* lengths 0 .. slot_size+1 */
    if (!self->received || !self->mismatched || !self->late || !self->late_next || !self->order || !self->by_length) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *Counter_begin(Counter *self, PyObject *args) {
    Py_ssize_t size;
    int stream, timestamps;
    long long sequences = 0;
    if (!PyArg_ParseTuple(args, "npp|L", &size, &stream, &timestamps, &sequences)) return NULL;
    if (size < 1 || size > self->slot_size) {
        return PyErr_Format(PyExc_ValueError, "expected size %zd is out of range 1-%zd", size, self->slot_size);
    }
    if (sequences < PREFIX)
        return PyErr_Format(PyExc_ValueError, "sequences %lld is not allowed; use 0 (none) or more, or -1 (shaped)", sequences);
    int64_t was = self->sequences;
    self->sequences = stream && (size >= SEQUENCE_BYTES || sequences == PREFIX) ? sequences : 0;
    memset(self->by_length, 0, ((size_t)self->slot_size + 2) * 2 * sizeof(int64_t));
    if (was > 0 || self->sequences > 0) {
        for (Py_ssize_t i = 0; i < self->slots; i++) order_reset(&self->order[i]);
    }
    size_t bytes = (size_t)self->slots * sizeof(int64_t);
    int64_t *late = self->late;
    self->late = self->late_next;
    self->late_next = late;
    memset(self->late_next, 0, bytes);
    memset(self->received, 0, bytes);
    memset(self->mismatched, 0, bytes);
    self->expected_size = size;
    self->per_port = stream ? NEVER : 1;
    self->timestamps = timestamps;
    self->reached = 0;
    self->arrivals = 0;
    release_held_columns(self);
    self->busy_ns = 0;
    self->checked = 0;
    self->first_take_ns = 0;
    self->last_arrival_ns = 0;
    for (unsigned int i = 0; i < self->batch; i++) self->iov[i].iov_len = (size_t)size + 1; /* +1: longer is seen */
    self->active = 1;
    Py_RETURN_NONE;
}

static PyObject *Counter_datagram(Counter *self, PyObject *args) {
    Py_ssize_t slot;
    Py_buffer data;
    long long rx_ns = 0;
    if (!PyArg_ParseTuple(args, "ny*|L", &slot, &data, &rx_ns)) return NULL;
    if (slot < 0 || slot >= self->slots) {
        PyBuffer_Release(&data);
        return PyErr_Format(PyExc_ValueError, "slot %zd is out of range 0-%zd", slot, self->slots - 1);
    }
    int failed = count_one(self, slot, data.buf, data.len, (int64_t)rx_ns);
    PyBuffer_Release(&data);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Counter_set_per_port(Counter *self, PyObject *arg) {
    long long per_port = PyLong_AsLongLong(arg);
    if (per_port == -1 && PyErr_Occurred()) return NULL;
    if (per_port < 1) return PyErr_Format(PyExc_ValueError, "per_port %lld is not allowed; use 1 or more", per_port);
    self->per_port = per_port;
    int64_t reached = 0;
    for (Py_ssize_t i = 0; i < self->slots; i++) reached += self->received[i] >= per_port;
    self->reached = reached;
    Py_RETURN_NONE;
}

static PyObject *Counter_tallies(Counter *self, PyObject *unused) {
    int64_t delivered = 0, mismatched = 0, late = 0, per_port = self->per_port;
    PyObject *rows = PyList_New(0);
    if (rows == NULL) return NULL;
    for (Py_ssize_t i = 0; i < self->slots; i++) {
        int64_t r = self->received[i], m = self->mismatched[i], l = self->late[i];
        const Order *o = &self->order[i];
        delivered += r;
        mismatched += m;
        late += l;
        if (r != per_port || m || l || o->repeats || o->reordered) {
            PyObject *row = Py_BuildValue("(nLLLLLL)", i, (long long)r, (long long)m, (long long)l,
                                          (long long)o->repeats, (long long)o->reordered, (long long)o->extent);
            if (row == NULL || PyList_Append(rows, row) < 0) {
                Py_XDECREF(row);
                Py_DECREF(rows);
                return NULL;
            }
            Py_DECREF(row);
        }
    }
    self->active = 0;
    self->spin_until = now_ns() + self->idle_spin_ns;
    return Py_BuildValue("(LLLLNN)", (long long)per_port, (long long)delivered, (long long)mismatched,
                         (long long)late, PyBool_FromLong(self->sequences > 0), rows);
}

/* A shaped stream's datagrams by length: [(length, received, matching), ...] for every length seen. */
static PyObject *Counter_lengths(Counter *self, PyObject *unused) {
    PyObject *rows = PyList_New(0);
    if (rows == NULL) return NULL;
    for (Py_ssize_t n = 0; n < self->slot_size + 2; n++) {
        if (self->by_length[2 * n] == 0) continue;
        PyObject *row = Py_BuildValue("(nLL)", n, (long long)self->by_length[2 * n], (long long)self->by_length[2 * n + 1]);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(rows);
            return NULL;
        }
        Py_DECREF(row);
    }
    return rows;
}

/* Read-only views of the op's arrivals; each holds its column, so it outlives begin() and the Counter. */
static PyObject *Counter_arrival_buffers(Counter *self, PyObject *unused) {
    static char empty[8];
    PyObject *views = PyTuple_New(COLUMNS);
    if (views == NULL) return NULL;
    for (int i = 0; i < COLUMNS; i++) {
        Column *column = self->columns[i];
        PyObject *view;
        if (column == NULL || self->arrivals == 0) {
            view = PyMemoryView_FromMemory(empty, 0, PyBUF_READ);
        } else {
            column->shown = self->arrivals * (Py_ssize_t)ITEM[i];
            view = PyMemoryView_FromObject((PyObject *)column);
        }
        if (view == NULL) {
            Py_DECREF(views);
            return NULL;
        }
        PyTuple_SET_ITEM(views, i, view);
    }
    return views;
}

/* ---- the socket loop ------------------------------------------------------------------------ */

static PyObject *Counter_attach(Counter *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"socks", "ctl_fd", "batch", "spin", "linger_ns", "idle_spin_ns", NULL};
    PyObject *fds;
    int ctl_fd, spin;
    unsigned int batch;
    long long linger_ns, idle_spin_ns;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OiIiLL", names, &fds, &ctl_fd, &batch, &spin, &linger_ns,
                                     &idle_spin_ns))
        return NULL;
    if (self->epfd >= 0) return PyErr_Format(PyExc_RuntimeError, "this Counter is already attached to sockets");
    if (spin < SLEEP || spin > POLL_OP) return PyErr_Format(PyExc_ValueError, "spin %d is out of range 0-2", spin);
    if (batch < 1 || batch > 1024) return PyErr_Format(PyExc_ValueError, "batch %u is out of range 1-1024", batch);
    PyObject *seq = PySequence_Fast(fds, "socks must be a sequence of sockets or file descriptors");
    if (seq == NULL) return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != self->slots) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "%zd sockets for %zd slots", PySequence_Fast_GET_SIZE(seq), self->slots);
    }
    size_t room = (size_t)self->slot_size + 1;
    self->fds = PyMem_RawMalloc((size_t)self->slots * sizeof(int));
    self->msgs = PyMem_RawCalloc(batch, sizeof(struct mmsghdr));
    self->iov = PyMem_RawCalloc(batch, sizeof(struct iovec));
    self->bufs = PyMem_RawMalloc(batch * room);
    self->cmsgs = PyMem_RawMalloc((size_t)batch * CMSG_ROOM);
    if (!self->fds || !self->msgs || !self->iov || !self->bufs || !self->cmsgs) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (unsigned int i = 0; i < batch; i++) {
        self->iov[i].iov_base = self->bufs + i * room;
        self->iov[i].iov_len = room;
        self->msgs[i].msg_hdr.msg_iov = &self->iov[i];
        self->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    self->batch = batch;
    self->spin = spin;
    self->linger_ns = linger_ns;
    self->idle_spin_ns = idle_spin_ns;
    self->ctl_fd = ctl_fd;
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        Py_DECREF(seq);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = CTL_TAG};
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, ctl_fd, &ev) < 0) {
        Py_DECREF(seq);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    for (Py_ssize_t i = 0; i < self->slots; i++) {
        int fd = PyObject_AsFileDescriptor(PySequence_Fast_GET_ITEM(seq, i));
        if (fd < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        self->fds[i] = fd;
        ev.data.u32 = (uint32_t)i;
        if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            Py_DECREF(seq);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

static PyObject *Counter_detach(Counter *self, PyObject *arg) {
    Py_ssize_t slot = PyLong_AsSsize_t(arg);
    if (slot == -1 && PyErr_Occurred()) return NULL;
    if (self->epfd < 0 || slot < 0 || slot >= self->slots || self->fds[slot] < 0)
        return PyErr_Format(PyExc_ValueError, "slot %zd has no attached socket", slot);
    if (epoll_ctl(self->epfd, EPOLL_CTL_DEL, self->fds[slot], NULL) < 0) return PyErr_SetFromErrno(PyExc_OSError);
    self->fds[slot] = -1;
    Py_RETURN_NONE;
}

/* Take what waits on one slot's socket, in recvmmsg batches; datagrams counted, or -1 on a socket
 * error (errno set), -2 when the arrival columns cannot grow (MemoryError set). */
static int64_t drain(Counter *self, Py_ssize_t slot) {
    int fd = self->fds[slot];
    int64_t got = 0;
    if (fd < 0) return 0; /* detached while its event was pending */
    for (int round = 0; round < DRAIN_ROUNDS; round++) {
        if (self->timestamps && self->active) {
            for (unsigned int i = 0; i < self->batch; i++) {
                self->msgs[i].msg_hdr.msg_control = self->cmsgs + (size_t)i * CMSG_ROOM;
                self->msgs[i].msg_hdr.msg_controllen = CMSG_ROOM;
            }
        } else {
            for (unsigned int i = 0; i < self->batch; i++) {
                self->msgs[i].msg_hdr.msg_control = NULL;
                self->msgs[i].msg_hdr.msg_controllen = 0;
            }
        }
        int n = recvmmsg(fd, self->msgs, self->batch, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct msghdr *hdr = &self->msgs[i].msg_hdr;
            int64_t rx = self->timestamps && self->active ? rx_timestamp_ns(hdr) : 0;
            if (count_one(self, slot, hdr->msg_iov->iov_base, (Py_ssize_t)self->msgs[i].msg_len, rx) < 0) return -2;
        }
        got += n;
        if ((unsigned int)n < self->batch) break; /* the queue is empty: save the call that says EAGAIN */
    }
    return got;
}

/* run(finishing, deadline_ns, silence_ns, since_ns) -> reason.
 * Not finishing: receive (and count, or count as late) until a command arrives. Finishing: drain
 * what is ready, then end with COMPLETE once every slot has per_port datagrams, or DEADLINE at
 * deadline_ns, or SILENCE once nothing arrived for silence_ns since max(since_ns, last arrival).
 * Negative deadline_ns / silence_ns mean none. Times are CLOCK_MONOTONIC ns (time.monotonic_ns). */
static PyObject *Counter_run(Counter *self, PyObject *args) {
    int finishing;
    long long deadline_ns, silence_ns, since_ns;
    if (!PyArg_ParseTuple(args, "pLLL", &finishing, &deadline_ns, &silence_ns, &since_ns)) return NULL;
    if (self->epfd < 0) return PyErr_Format(PyExc_RuntimeError, "run() needs attach() first");
    int maxevents = self->slots + 1 < MAX_EVENTS ? (int)self->slots + 1 : MAX_EVENTS;
    int draining = finishing;
    for (;;) {
        int timeout_ms;
        int64_t end = INT64_MAX;
        if (finishing) {
            if (deadline_ns >= 0) end = deadline_ns;
            if (silence_ns >= 0) {
                int64_t from = self->last_arrival_ns > since_ns ? self->last_arrival_ns : since_ns;
                if (from + silence_ns < end) end = from + silence_ns;
            }
        }
        /* POLL_OP: the op's first datagram woke the loop; the rest follow within the op, so poll */
        int polling = self->active && (self->spin == SPIN || (self->spin == POLL_OP && self->first_take_ns &&
                                                              self->reached < self->slots));
        if (polling || draining) {
            timeout_ms = 0;
        } else if (!finishing) {
            /* between ops, keep spinning a little: back-to-back ops then never wait for a wake-up */
            timeout_ms = self->spin == SPIN && now_ns() < self->spin_until ? 0 : -1;
        } else if (end == INT64_MAX) {
            timeout_ms = -1; /* finishing with neither deadline nor silence: until complete */
        } else {
            int64_t left = end - now_ns();
            timeout_ms = left <= 0 ? 0 : left >= (int64_t)INT32_MAX * 1000000 ? INT32_MAX : (int)((left + 999999) / 1000000);
        }
        int n = epoll_wait(self->epfd, self->events, maxevents, timeout_ms);
        if (n < 0) {
            if (errno != EINTR) return PyErr_SetFromErrno(PyExc_OSError);
            if (PyErr_CheckSignals() < 0) return NULL;
            continue;
        }
        if (n == 0 && timeout_ms == 0 && !draining) sched_yield(); /* spinning: let a waiting task have the CPU */
        /* A command first: datagrams sent after begin() must not be counted as late because
         * the BEGIN waiting beside them was read last. Level-triggered epoll reports them again. */
        for (int i = 0; i < n; i++) {
            if (self->events[i].data.u32 == CTL_TAG) return PyLong_FromLong(COMMAND);
        }
        int64_t t1 = n > 0 && self->active ? cpu_ns() : 0, got = 0;
        int64_t taking = n > 0 && self->active && !self->first_take_ns ? now_ns() : 0;
        for (int i = 0; i < n; i++) {
            int64_t one = drain(self, (Py_ssize_t)self->events[i].data.u32);
            if (one == -2) return NULL;
            if (one < 0) return PyErr_SetFromErrno(PyExc_OSError);
            got += one;
        }
        if (got && self->active) {
            self->busy_ns += cpu_ns() - t1;
            self->checked += got;
            self->last_arrival_ns = now_ns();
            if (!self->first_take_ns) self->first_take_ns = taking;
        }
        if (finishing) {
            if (got) {
                draining = 1; /* drain until a poll finds nothing more, then decide */
                continue;
            }
            draining = 0;
            if (self->reached >= self->slots) return PyLong_FromLong(COMPLETE);
            int64_t now = now_ns();
            if (deadline_ns >= 0 && now >= deadline_ns) return PyLong_FromLong(DEADLINE);
            if (now >= end) return PyLong_FromLong(SILENCE);
        } else if (got && self->active && self->linger_ns > 0) {
            /* let datagrams queue a little so the next recvmmsg batches are bigger */
            struct timespec pause = {.tv_sec = 0, .tv_nsec = self->linger_ns};
            nanosleep(&pause, NULL);
        }
    }
}

static PyObject *Counter_get_complete(Counter *self, void *closure) {
    return PyBool_FromLong(self->reached >= self->slots);
}

static PyObject *Counter_get_active(Counter *self, void *closure) {
    return PyBool_FromLong(self->active);
}

static PyGetSetDef Counter_getset[] = {
    GETTER("complete", Counter_get_complete, "every slot has had at least per_port datagrams"),
    GETTER("active", Counter_get_active, "an op is open"),
    {NULL},
};

/* The int64 fields Python reads as they are (read-only). */
#define RO(name, field, doc) RO_INT64(Counter, name, field, doc)
static PyMemberDef Counter_members[] = {
    RO("per_port", per_port, "datagrams each slot expects in the open op"),
    RO("busy_ns", busy_ns, "ns spent receiving and checking in this op"),
    RO("checked", checked, "datagrams received and checked by run() in this op"),
    RO("first_take_ns", first_take_ns,
       "CLOCK_MONOTONIC ns when run() began taking the op's first datagrams (0: none yet)"),
    RO("last_take_ns", last_arrival_ns,
       "CLOCK_MONOTONIC ns when run() had checked the op's latest datagrams (0: none yet)"),
    {NULL},
};

static PyMethodDef Counter_methods[] = {
    {"lengths", (PyCFunction)Counter_lengths, METH_NOARGS,
     "lengths() -> [(length, received, matching)]: a shaped stream's datagrams by length (begin with sequences -1)"},
    {"begin", (PyCFunction)Counter_begin, METH_VARARGS,
     "begin(expected_size, stream, timestamps, sequences=0): open an op (a sequenced stream when sequences > 0)"},
    {"datagram", (PyCFunction)Counter_datagram, METH_VARARGS, "datagram(slot, data, rx_ns=0): count one datagram"},
    {"set_per_port", (PyCFunction)Counter_set_per_port, METH_O, "set_per_port(n): datagrams each slot expects"},
    {"tallies", (PyCFunction)Counter_tallies, METH_NOARGS,
     "tallies() -> (per_port, delivered, mismatched, late, sequenced, rows): close the op"},
    {"arrival_buffers", (PyCFunction)Counter_arrival_buffers, METH_NOARGS,
     "arrival_buffers() -> (rx_ns, slot, match) read-only memoryviews of the op's arrivals, valid while held"},
    {"attach", (PyCFunction)(void (*)(void))Counter_attach, METH_VARARGS | METH_KEYWORDS,
     "attach(socks, ctl_fd, batch, spin, linger_ns, idle_spin_ns): watch slot i's socket socks[i] and the "
     "control socket; spin 0 sleeps, 1 polls while an op is open, 2 polls from an op's first datagram to its end"},
    {"detach", (PyCFunction)Counter_detach, METH_O, "detach(slot): stop watching a slot's socket"},
    {"run", (PyCFunction)Counter_run, METH_VARARGS,
     "run(finishing, deadline_ns, silence_ns, since_ns) -> 0 command, 1 complete, 2 deadline, 3 silence"},
    {NULL},
};

static PyTypeObject CounterType = {
    TYPE_HEAD_FLAGS("rawpacer._readloop.Counter", Counter, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
                    "Counter(expected, slot_size, slots): the readers' counting core and socket loop in C"),
    LIFECYCLE(Counter_init, Counter_dealloc),
    .tp_methods = Counter_methods,
    .tp_members = Counter_members,
    .tp_getset = Counter_getset,
};

static struct PyModuleDef module = MODULE_DEF(
    "rawpacer._readloop",
    "The readers' fast path: recvmmsg, check every byte and count in one C loop (rawpacer.readers.fastloop).", NULL);

static const ModuleInt constants[] = {
    MODULE_INT(COMMAND), MODULE_INT(COMPLETE), MODULE_INT(DEADLINE), MODULE_INT(SILENCE),
    MODULE_INT(SLEEP), MODULE_INT(SPIN), MODULE_INT(POLL_OP), {NULL, 0},
};

PyMODINIT_FUNC PyInit__readloop(void) {
    if (PyType_Ready(&ColumnType) < 0) return NULL; /* made by Counter, not exported */
    return module_create(&module, constants, (PyTypeObject *[]){&CounterType, NULL});
}
