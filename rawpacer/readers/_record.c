/* rawpacer.readers._record: a replay's recorder in C, the hot loop of rawpacer.readers.replay.
 *
 * Recorder(fds, ctl_fd) owns one epoll set over the reader sockets (slot i is fds[i]) and the
 * control socket. run(settle_ns, since_ns, deadline_ns) releases the GIL, waits in epoll_wait(2),
 * and takes what each ready socket holds in recvmmsg(2) batches: per datagram its slot, length,
 * dg_hash of its content (rawpacer/_dghash.h) and kernel receive time (SO_TIMESTAMPNS, socket(7);
 * CLOCK_REALTIME now when a datagram carries none), appended to four growable arrays. It returns
 * to Python only when the control socket is readable (Python reads the command) or when a
 * collection has settled. dump(fd) writes the four arrays back to back (the memfd's layout,
 * replay.BYTES_PER_DATAGRAM) and starts afresh. The pure-Python twin is replay._Recorder's own
 * loop; tests hold the two to the same records.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "../_rxstamp.h"
#include "../_dghash.h"
#include "../_pymodule.h"

/* Every UDP payload fits whole (65,507 bytes over IPv4, 65,527 over IPv6 without jumbograms,
 * RFC 768 / RFC 8200), so recvmmsg never truncates one; the same size as replay.MAX_DATAGRAM. */
#define MAX_DATAGRAM 65536
#define BATCH 64        /* datagrams per recvmmsg call */
#define DRAIN_ROUNDS 16 /* recvmmsg batches taken from one socket per wake-up before serving the others */
#define CMSG_ROOM 64    /* one SCM_TIMESTAMPNS (16-byte timespec) with its header, and slack */
#define CTL_TAG UINT32_MAX
#define MAX_EVENTS 1024
#define FIRST_ROOM 65536 /* datagrams the arrays hold before their first growth */

enum { COMMAND = 0, SETTLED = 1 };

typedef struct {
    PyObject_HEAD
    int epfd, ctl_fd, busy;
    Py_ssize_t slots;
    int *fds;
    /* the records: count of room, one array per column */
    Py_ssize_t count, room;
    int64_t *rx_ns;
    uint64_t *hash;
    int32_t *slot, *length;
    int64_t last_arrival_ns; /* CLOCK_MONOTONIC of the latest pass that took datagrams */
    /* recvmmsg's batch */
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    char cmsgs[BATCH][CMSG_ROOM];
    unsigned char *bufs; /* BATCH buffers of MAX_DATAGRAM bytes */
    struct epoll_event events[MAX_EVENTS];
} Recorder;

static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One array made room for `room` items of `size` bytes; 0, or -1 (the array as it was) when memory is short. */
static int regrow(void **array, Py_ssize_t room, size_t size) {
    void *grown = PyMem_RawRealloc(*array, (size_t)room * size);
    if (grown == NULL) return -1;
    *array = grown;
    return 0;
}

/* Room for twice the records; 0, or -1 when memory is short (the room as it was then). Called without
 * the GIL: PyMem_Raw* needs none. */
static int grow(Recorder *self) {
    Py_ssize_t room = self->room ? self->room * 2 : FIRST_ROOM;
    if (regrow((void **)&self->rx_ns, room, sizeof(int64_t)) < 0 || regrow((void **)&self->hash, room, sizeof(uint64_t)) < 0
        || regrow((void **)&self->slot, room, sizeof(int32_t)) < 0 || regrow((void **)&self->length, room, sizeof(int32_t)) < 0)
        return -1;
    self->room = room;
    return 0;
}

/* Record what waits on one slot's socket, in recvmmsg batches. Datagrams recorded, or -1 on a
 * socket error (errno set), -2 when the arrays cannot grow. Runs without the GIL. */
static int64_t drain(Recorder *self, uint32_t slot) {
    int fd = self->fds[slot];
    int64_t got = 0;
    for (int round = 0; round < DRAIN_ROUNDS; round++) {
        for (int i = 0; i < BATCH; i++) { /* the kernel rewrote the last call's lengths */
            self->msgs[i].msg_hdr.msg_control = self->cmsgs[i];
            self->msgs[i].msg_hdr.msg_controllen = CMSG_ROOM;
        }
        int n = recvmmsg(fd, self->msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return -1;
        }
        if (self->count + n > self->room && grow(self) < 0) return -2;
        int64_t now = 0; /* read once a batch, and only for datagrams without a stamp */
        for (int i = 0; i < n; i++) {
            struct msghdr *hdr = &self->msgs[i].msg_hdr;
            size_t len = self->msgs[i].msg_len;
            int64_t rx = rx_timestamp_ns(hdr);
            if (rx == 0) rx = now ? now : (now = clock_ns(CLOCK_REALTIME));
            Py_ssize_t at = self->count++;
            self->rx_ns[at] = rx;
            self->hash[at] = dg_hash(self->iov[i].iov_base, len);
            self->slot[at] = (int32_t)slot;
            self->length[at] = (int32_t)len;
        }
        got += n;
        if (n < BATCH) break; /* the queue is empty: save the call that says EAGAIN */
    }
    return got;
}

static void Recorder_dealloc(Recorder *self) {
    if (self->epfd >= 0) close(self->epfd);
    FREE_ALL(PyMem_RawFree, self->fds, self->rx_ns, self->hash, self->slot, self->length, self->bufs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Recorder_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Recorder *self = (Recorder *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->epfd = -1;
        self->ctl_fd = -1;
    }
    return (PyObject *)self;
}

static int Recorder_init(Recorder *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"fds", "ctl_fd", NULL};
    PyObject *fds;
    int ctl_fd;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi", names, &fds, &ctl_fd)) return -1;
    if (self->epfd >= 0) {
        PyErr_SetString(PyExc_TypeError, "Recorder is already initialised");
        return -1;
    }
    PyObject *seq = PySequence_Fast(fds, "fds must be a sequence of sockets or file descriptors");
    if (seq == NULL) return -1;
    Py_ssize_t slots = PySequence_Fast_GET_SIZE(seq);
    if (slots < 1 || slots > INT32_MAX - 1) {
        PyErr_Format(PyExc_ValueError, "%zd sockets is out of range 1-%d", slots, INT32_MAX - 1);
        goto fail;
    }
    PyMem_RawFree(self->fds); /* a second __init__ after a failed first */
    PyMem_RawFree(self->bufs);
    self->fds = PyMem_RawMalloc((size_t)slots * sizeof(int));
    self->bufs = PyMem_RawMalloc((size_t)BATCH * MAX_DATAGRAM); /* pages are touched only as datagrams fill them */
    if (self->fds == NULL || self->bufs == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (int i = 0; i < BATCH; i++) {
        self->iov[i].iov_base = self->bufs + (size_t)i * MAX_DATAGRAM;
        self->iov[i].iov_len = MAX_DATAGRAM;
        self->msgs[i].msg_hdr.msg_iov = &self->iov[i];
        self->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = CTL_TAG};
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, ctl_fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    self->ctl_fd = ctl_fd;
    for (Py_ssize_t i = 0; i < slots; i++) {
        int fd = PyObject_AsFileDescriptor(PySequence_Fast_GET_ITEM(seq, i));
        if (fd < 0) goto fail;
        self->fds[i] = fd;
        ev.data.u32 = (uint32_t)i;
        if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            goto fail;
        }
    }
    self->slots = slots;
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

/* Refuses a second caller while run() or dump() works without the GIL (another thread). */
static int claim(Recorder *self) {
    if (self->epfd < 0) {
        PyErr_SetString(PyExc_RuntimeError, "Recorder is not initialised");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Recorder is in use by another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

/* run(settle_ns, since_ns, deadline_ns) -> COMMAND or SETTLED.
 * Records until the control socket is readable (COMMAND: the command is left for Python to read).
 * With settle_ns > 0 (a collection is open) it also ends with SETTLED once nothing has arrived for
 * settle_ns since max(since_ns, the latest arrival), or at deadline_ns. Times are CLOCK_MONOTONIC
 * ns (time.monotonic_ns). Datagrams already queued when the command comes stay queued: epoll is
 * level-triggered, so the next run() takes them. */
static PyObject *Recorder_run(Recorder *self, PyObject *args) {
    long long settle_ns, since_ns, deadline_ns;
    if (!PyArg_ParseTuple(args, "LLL", &settle_ns, &since_ns, &deadline_ns)) return NULL;
    if (claim(self) < 0) return NULL;
    int maxevents = self->slots + 1 < MAX_EVENTS ? (int)self->slots + 1 : MAX_EVENTS;
    int result = -1, failure = 0, err = 0; /* failure: 1 errno, 2 memory, 3 a signal to check */
    for (;;) {
        int timeout_ms = -1;
        if (settle_ns > 0) {
            int64_t from = self->last_arrival_ns > since_ns ? self->last_arrival_ns : since_ns;
            int64_t end = from + settle_ns < deadline_ns ? from + settle_ns : deadline_ns;
            int64_t left = end - clock_ns(CLOCK_MONOTONIC);
            timeout_ms = left <= 0 ? 0 : left >= (int64_t)INT32_MAX * 1000000 ? INT32_MAX : (int)((left + 999999) / 1000000);
        }
        int n;
        Py_BEGIN_ALLOW_THREADS;
        n = epoll_wait(self->epfd, self->events, maxevents, timeout_ms);
        err = errno;
        int64_t got = 0;
        for (int i = 0; i < n && !failure; i++) {
            uint32_t tag = self->events[i].data.u32;
            if (tag == CTL_TAG) {
                result = COMMAND;
                continue;
            }
            int64_t one = drain(self, tag);
            if (one == -1) {
                failure = 1;
                err = errno;
            } else if (one == -2) {
                failure = 2;
            } else {
                got += one;
            }
        }
        if (got) self->last_arrival_ns = clock_ns(CLOCK_MONOTONIC);
        Py_END_ALLOW_THREADS;
        if (n < 0) {
            if (err != EINTR) {
                failure = 1;
            } else if (PyErr_CheckSignals() < 0) {
                failure = 3;
            }
        }
        if (failure || result == COMMAND) break;
        if (settle_ns > 0) { /* settled, or the deadline passed however much keeps arriving */
            int64_t now = clock_ns(CLOCK_MONOTONIC);
            int64_t from = self->last_arrival_ns > since_ns ? self->last_arrival_ns : since_ns;
            if (now - from >= settle_ns || now >= deadline_ns) {
                result = SETTLED;
                break;
            }
        }
    }
    self->busy = 0;
    if (failure == 1) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (failure == 2) return PyErr_NoMemory();
    if (failure == 3) return NULL;
    return PyLong_FromLong(result);
}

/* Write all of [p, p + n) to fd, through short writes and EINTR (write(2)); 0, or -1 with errno set. */
static int write_all(int fd, const void *p, size_t n) {
    const char *at = p;
    while (n) {
        ssize_t done = write(fd, at, n);
        if (done < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        at += done;
        n -= (size_t)done;
    }
    return 0;
}

/* dump(fd) -> count: the records as rx_ns int64[count], hash uint64[count], slot int32[count],
 * length int32[count], written to fd one after the other; then the Recorder starts afresh. */
static PyObject *Recorder_dump(Recorder *self, PyObject *arg) {
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0) return NULL;
    if (claim(self) < 0) return NULL;
    size_t count = (size_t)self->count;
    int failed;
    Py_BEGIN_ALLOW_THREADS;
    failed = count && (write_all(fd, self->rx_ns, count * sizeof(int64_t)) < 0 ||
                       write_all(fd, self->hash, count * sizeof(uint64_t)) < 0 ||
                       write_all(fd, self->slot, count * sizeof(int32_t)) < 0 ||
                       write_all(fd, self->length, count * sizeof(int32_t)) < 0);
    Py_END_ALLOW_THREADS;
    self->busy = 0;
    if (failed) return PyErr_SetFromErrno(PyExc_OSError);
    self->count = 0;
    return PyLong_FromSsize_t((Py_ssize_t)count);
}

static PyObject *Recorder_get_count(Recorder *self, void *closure) { return PyLong_FromSsize_t(self->count); }

static PyGetSetDef Recorder_getset[] = {
    GETTER("count", Recorder_get_count, "datagrams recorded since the start or the last dump"),
    {NULL},
};

static PyMethodDef Recorder_methods[] = {
    {"run", (PyCFunction)Recorder_run, METH_VARARGS,
     "run(settle_ns, since_ns, deadline_ns) -> COMMAND (the control socket is readable) or SETTLED (settle_ns > 0: "
     "nothing arrived for settle_ns since max(since_ns, the latest arrival), or deadline_ns passed); GIL released"},
    {"dump", (PyCFunction)Recorder_dump, METH_O,
     "dump(fd) -> count: write rx_ns int64, hash uint64, slot int32, length int32 arrays to fd, then clear"},
    {NULL},
};

static PyTypeObject RecorderType = {
    TYPE_HEAD("rawpacer.readers._record.Recorder", Recorder,
              "Recorder(fds, ctl_fd): a replay's recorder, slot i being the socket fds[i]"),
    .tp_new = Recorder_new,
    .tp_init = (initproc)Recorder_init,
    .tp_dealloc = (destructor)Recorder_dealloc,
    .tp_methods = Recorder_methods,
    .tp_getset = Recorder_getset,
};

static struct PyModuleDef module = MODULE_DEF(
    "rawpacer.readers._record",
    "A replay's recorder: recvmmsg, hash and stamp every datagram in one C loop (rawpacer.readers.replay).", NULL);

static const ModuleInt constants[] = {MODULE_INT(COMMAND), MODULE_INT(SETTLED), MODULE_INT(MAX_DATAGRAM), {NULL, 0}};

PyMODINIT_FUNC PyInit__record(void) {
    return module_create(&module, constants, (PyTypeObject *[]){&RecorderType, NULL});
}
