/*
 * Edge-triggered epoll UDP echo server in plain C: the practical limit for the UDP benchmark.
 *
 *     cc -O2 -o udp_echo udp_echo.c
 *     ./udp_echo --listen 127.0.0.1:7004 [--batch N]     (then: nc -u 127.0.0.1 7004)
 *
 * One socket, one epoll set, registered once for EPOLLIN with EPOLLET. On each event it reads
 * until EAGAIN: with --batch 1 one recvfrom and one sendto per datagram, otherwise recvmmsg of
 * up to N datagrams into N slots of 64 KiB and the batch's replies back with one sendmmsg (a
 * reply the kernel cannot take is dropped, as a UDP server without a queue does).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOT (64 * 1024)
#define MAX_BATCH 32

static char bufs[MAX_BATCH][SLOT];

static int parse_addr(const char *s, struct sockaddr_in *sa) {
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
    memcpy(host, s, colon - s);
    host[colon - s] = 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)atoi(colon + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *listen_at = "127.0.0.1:7004";
    int batch = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--listen")) listen_at = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    }
    if (batch < 1) batch = 1;
    if (batch > MAX_BATCH) batch = MAX_BATCH;
    struct sockaddr_in sa;
    if (parse_addr(listen_at, &sa) < 0) { fprintf(stderr, "bad address %s\n", listen_at); return 2; }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); return 1; }
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    char host[64];
    inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
    fprintf(stderr, "udp_echo listening on %s:%d\n", host, ntohs(sa.sin_port));

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);

    struct mmsghdr hdrs[MAX_BATCH];
    struct iovec iovs[MAX_BATCH];
    struct sockaddr_in from[MAX_BATCH];
    for (;;) {
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, -1);
        if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); return 1; }
        for (;;) {
            int count;
            if (batch == 1) {
                socklen_t flen = sizeof from[0];
                ssize_t r = recvfrom(fd, bufs[0], SLOT, 0, (struct sockaddr *)&from[0], &flen);
                if (r < 0) { if (errno == EINTR) continue; break; }
                hdrs[0].msg_len = (unsigned)r;
                count = 1;
            } else {
                for (int i = 0; i < batch; i++) {
                    iovs[i].iov_base = bufs[i];
                    iovs[i].iov_len = SLOT;
                    memset(&hdrs[i].msg_hdr, 0, sizeof hdrs[i].msg_hdr);
                    hdrs[i].msg_hdr.msg_name = &from[i];
                    hdrs[i].msg_hdr.msg_namelen = sizeof from[i];
                    hdrs[i].msg_hdr.msg_iov = &iovs[i];
                    hdrs[i].msg_hdr.msg_iovlen = 1;
                }
                count = recvmmsg(fd, hdrs, batch, MSG_DONTWAIT, NULL);
                if (count < 0) { if (errno == EINTR) continue; break; }
            }
            if (batch == 1) {
                sendto(fd, bufs[0], hdrs[0].msg_len, 0, (struct sockaddr *)&from[0], sizeof from[0]);
            } else {
                /* The same headers carry the replies: each iovec cut to its datagram's length,
                 * each name the sender's address the kernel filled in. */
                for (int i = 0; i < count; i++) iovs[i].iov_len = hdrs[i].msg_len;
                int sent = 0;
                while (sent < count) {
                    int r = sendmmsg(fd, hdrs + sent, count - sent, 0);
                    if (r <= 0) break;
                    sent += r;
                }
            }
            /* A short batch found the queue empty: the next datagram raises a new edge. */
            if (batch > 1 && count < batch) break;
        }
    }
}
