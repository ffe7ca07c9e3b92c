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
	// fd is the socket's descriptor, for quiet. It stays valid while the
	// connection is open, and only the connection's owner, who calls
	// quiet, closes it.
	fd int
	// fn is check, bound once per connection: a method value made per
	// call would allocate.
	fn  func(fd uintptr) bool
	buf [1]byte
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
	fd := -1
	if rc.Control(func(d uintptr) { fd = int(d) }) != nil || fd < 0 {
		return
	}
	sp.rc, sp.fd = rc, fd
	sp.fn = sp.check
}

// check runs with the socket's descriptor: one non-blocking peek at its
// receive queue. It returns false, so that the runtime's poller waits for
// the socket to become readable and calls it again, when nothing is there.
func (sp *sockPeek) check(fd uintptr) bool {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&sp.buf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN
}

// quiet reports whether nothing waits to be read on the connection;
// true when it cannot tell. It makes the system call itself rather than
// through the runtime's poller, which would add half again to its cost on
// every reuse of a pooled connection.
func (sp *sockPeek) quiet() bool {
	if sp.rc == nil {
		return true
	}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(sp.fd), uintptr(unsafe.Pointer(&sp.buf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN
}

// wait blocks until something can be read from the connection (a byte,
// the end of the stream or an error) or its read deadline passes, and
// reads nothing. ok is false when it cannot wait this way; the caller then
// reads instead.
func (sp *sockPeek) wait() (ok bool, err error) {
	if sp.rc == nil {
		return false, nil
	}
	return true, sp.rc.Read(sp.fn)
}
