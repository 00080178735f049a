#!/usr/bin/env python3
"""TCP peers with exactly known behaviour, for tcp_health_bpf_test.

Servers (bind ADDR:PORT, print "listening" once listening):
  sink ADDR PORT REPLY_BYTES   per connection: read to EOF, send REPLY_BYTES, close
  noread ADDR PORT             accept and never read (the window fills up)
  rst ADDR PORT                read 10 bytes, then close with data unread (RST)
Clients:
  send ADDR PORT NBYTES [HOLD_FILE]
      connect, send NBYTES; with HOLD_FILE, wait until the peer acked all of
      it, print "holding" and wait for the file to exist (the connection
      stays established meanwhile); then shut down writing, read the reply
      to EOF, close and print "sent=N received=M"
  stall ADDR PORT SECONDS      write without pause for SECONDS (the peer
                               does not read), then close
  connect ADDR PORT            one connect; print "ok" or the errno name
"""
import errno
import fcntl
import os
import socket
import sys
import termios
import threading
import time


def serve(addr, port, handler):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def sink(reply_bytes):
    def handle(conn):
        while conn.recv(1 << 16):
            pass
        conn.sendall(b"r" * reply_bytes)
        conn.close()
    return handle


def noread(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    time.sleep(3600)


def rst(conn):
    conn.recv(10)
    time.sleep(0.2)  # let the rest of the client's data arrive unread
    conn.close()


def send(addr, port, nbytes, hold_file=None):
    s = socket.create_connection((addr, port))
    chunk = b"s" * (1 << 16)
    left = nbytes
    while left > 0:
        n = s.send(chunk[:min(left, len(chunk))])
        left -= n
    if hold_file:
        while fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0\0\0\0") != b"\0\0\0\0":
            time.sleep(0.01)  # bytes not yet acked by the peer
        print("holding", flush=True)
        while not os.path.exists(hold_file):
            time.sleep(0.02)
    s.shutdown(socket.SHUT_WR)
    received = 0
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        received += len(b)
    s.close()
    print(f"sent={nbytes} received={received}", flush=True)


def stall(addr, port, seconds):
    s = socket.create_connection((addr, port))
    s.setblocking(False)
    end = time.time() + seconds
    chunk = b"z" * 4096
    while time.time() < end:
        try:
            s.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    s.close()
    print("done", flush=True)


def connect(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.connect((addr, port))
        print("ok", flush=True)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    finally:
        s.close()


def main(argv):
    mode, addr, port = argv[1], argv[2], int(argv[3])
    if mode == "sink":
        serve(addr, port, sink(int(argv[4])))
    elif mode == "noread":
        serve(addr, port, noread)
    elif mode == "rst":
        serve(addr, port, rst)
    elif mode == "send":
        send(addr, port, int(argv[4]), argv[5] if len(argv) > 5 else None)
    elif mode == "stall":
        stall(addr, port, float(argv[4]))
    elif mode == "connect":
        connect(addr, port)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
