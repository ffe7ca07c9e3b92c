//go:build linux

package proxy

import (
	"net"
	"syscall"
	"unsafe"
)

// sockPeek looks at a TCP connection's receive queue without reading from
// it: to tell whether anything waits on an idle connection, and to wait
// for a client's next request without holding a read buffer.
type sockPeek struct {
	rc syscall.RawConn
	// fn is check, bound once per connection: a method value made per
	// call would allocate.
	fn      func(fd uintptr) bool
	waiting bool // fn waits for something to read, rather than looking once
	got     bool // something waits: a byte, the end of the stream or an error
	buf     [1]byte
}

// init prepares the peek for c; on anything but a socket it stays unable
// to tell (quiet reports true, wait reports false).
func (sp *sockPeek) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	sp.rc = rc
	sp.fn = sp.check
}

// check runs with the socket's descriptor: one non-blocking peek at its
// receive queue. It returns false, so that the runtime's poller waits for
// the socket to become readable and calls it again, only when nothing is
// there and the caller waits.
func (sp *sockPeek) check(fd uintptr) bool {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&sp.buf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if errno == syscall.EAGAIN {
		sp.got = false
		return !sp.waiting
	}
	sp.got = true
	return true
}

// quiet reports whether nothing waits to be read on the connection;
// true when it cannot tell.
func (sp *sockPeek) quiet() bool {
	if sp.rc == nil {
		return true
	}
	sp.waiting = false
	if err := sp.rc.Read(sp.fn); err != nil {
		return false
	}
	return !sp.got
}

// wait blocks until something can be read from the connection (a byte,
// the end of the stream or an error) or its read deadline passes, and
// reads nothing. ok is false when it cannot wait this way; the caller then
// reads instead.
func (sp *sockPeek) wait() (ok bool, err error) {
	if sp.rc == nil {
		return false, nil
	}
	sp.waiting = true
	return true, sp.rc.Read(sp.fn)
}
