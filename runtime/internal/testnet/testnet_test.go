package testnet

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestRefusedAddrStaysRefused: the address refuses connections, and no
// listener can take its port while the test runs, which is what a test
// relies on when it names a replica that is down.
func TestRefusedAddrStaysRefused(t *testing.T) {
	addr := RefusedAddr(t)
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %d to %s connected, want it refused", i, addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %d to %s: %v, want connection refused", i, addr, err)
		}
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			t.Fatalf("a listener could take %s, whose connections must stay refused", addr)
		}
	}
}
