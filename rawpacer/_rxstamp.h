/* A received datagram's kernel timestamp, shared by rawpacer._readloop (the readers) and
 * rawpacer.readers._record (a replay's recorder): both ask for it with SO_TIMESTAMPNS (socket(7)),
 * and the kernel hands it as an SCM_TIMESTAMPNS control message beside each datagram. */
#ifndef RAWPACER_RXSTAMP_H
#define RAWPACER_RXSTAMP_H
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* The SCM_TIMESTAMPNS stamp of one received message in ns, or 0 when it carries none. */
static inline int64_t rx_timestamp_ns(struct msghdr *hdr) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(hdr); c != NULL; c = CMSG_NXTHDR(hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
    }
    return 0;
}
#endif
