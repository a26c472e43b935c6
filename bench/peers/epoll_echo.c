/*
 * Edge-triggered epoll echo server in plain C: the practical limit a reactor is compared with.
 *
 *     cc -O2 -o epoll_echo epoll_echo.c
 *     ./epoll_echo --listen 127.0.0.1:7003      (then: nc 127.0.0.1 7003)
 *
 * One thread, one epoll set. Every socket is non-blocking and registered once, for
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP with EPOLLET, so the loop never calls epoll_ctl after a
 * connection is added. Per connection it keeps a small struct; an output buffer exists only
 * while a write was short (the unsent tail waits for EPOLLOUT, and reading pauses meanwhile, so
 * a client that does not read cannot grow the server). All reads land in one 64 KiB buffer.
 *
 * Reads stop at EAGAIN or at a short read: with EPOLLET, bytes arriving after a read that did
 * not fill the buffer raise a new event, so the read that would only return EAGAIN is skipped
 * (tokio does the same). Accept runs until EAGAIN.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The read buffer; `cc -DREAD_BUF=262144` builds the variant `bench/compare` calls
 * c-epoll-256k, the same server reading as much as evdrive does at most. */
#ifndef READ_BUF
#define READ_BUF (64 * 1024)
#endif
#define MAX_EVENTS 1024

struct conn {
    int fd;
    /* Unsent tail of an echo: pending[off..len]. NULL when everything was written. */
    char *pending;
    size_t off, len;
};

static char buf[READ_BUF];

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void conn_close(struct conn *c) {
    close(c->fd); /* also removes it from the epoll set */
    free(c->pending);
    free(c);
}

/* Writes data[0..n] fully, or keeps the unsent tail. Returns -1 when the connection failed. */
static int conn_write(struct conn *c, const char *data, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = send(c->fd, data + done, n - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            size_t rest = n - done;
            char *tail = malloc(rest);
            if (!tail)
                return -1;
            memcpy(tail, data + done, rest);
            c->pending = tail;
            c->off = 0;
            c->len = rest;
            return 0;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Sends what is pending. Returns 1 when drained, 0 when still pending, -1 on failure. */
static int conn_flush(struct conn *c) {
    while (c->off < c->len) {
        ssize_t w = send(c->fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w > 0)
            c->off += (size_t)w;
        else if (w < 0 && errno == EINTR)
            continue;
        else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        else
            return -1;
    }
    free(c->pending);
    c->pending = NULL;
    c->off = c->len = 0;
    return 1;
}

/* Reads and echoes until the socket is drained or output backs up. -1 means close. */
static int conn_read(struct conn *c) {
    while (!c->pending) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n > 0) {
            if (conn_write(c, buf, (size_t)n) < 0)
                return -1;
            if ((size_t)n < sizeof buf)
                return 0; /* short read: drained, a new edge comes with new bytes */
        } else if (n == 0) {
            return -1; /* peer closed */
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else {
            return -1;
        }
    }
    return 0;
}

static int listen_on(const char *spec) {
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "epoll_echo: address must be HOST:PORT, got %s\n", spec);
        exit(2);
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    char *h = host;
    if (h[0] == '[') { /* [::1]:port */
        h++;
        h[strlen(h) - 1] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *ai;
    int rc = getaddrinfo(h, colon + 1, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "epoll_echo: %s: %s\n", spec, gai_strerror(rc));
        exit(2);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die("setsockopt(SO_REUSEADDR)");
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die("bind");
    if (listen(fd, SOMAXCONN) < 0)
        die("listen");
    freeaddrinfo(ai);
    return fd;
}

int main(int argc, char **argv) {
    const char *spec = "127.0.0.1:7003";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            spec = argv[++i];
        else if (strchr(argv[i], ':'))
            spec = argv[i];
        else {
            fprintf(stderr, "usage: %s [--listen] HOST:PORT\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(spec);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    /* The listener is the one entry whose data pointer is NULL. */
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl(listener)");

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                /* Accept until EAGAIN; a failed accept of one connection skips it. */
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                            continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                            perror("accept4"); /* EMFILE and the like: wait for the next edge */
                        break;
                    }
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                             .data.ptr = nc};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        perror("epoll_ctl(add)");
                        conn_close(nc);
                    }
                }
                continue;
            }
            uint32_t e = events[i].events;
            if (e & EPOLLERR) {
                conn_close(c);
                continue;
            }
            if (c->pending) {
                /* Reading is paused until the unsent tail is gone. */
                int r = (e & (EPOLLOUT | EPOLLHUP)) ? conn_flush(c) : 0;
                /* Bytes may be waiting without a new edge, so read as soon as output drained. */
                if (r < 0 || (r == 1 && conn_read(c) < 0))
                    conn_close(c);
                continue;
            }
            if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && conn_read(c) < 0)
                conn_close(c);
        }
    }
}
