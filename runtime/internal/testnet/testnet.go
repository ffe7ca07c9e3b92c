// Package testnet gives tests network addresses that behave as they need
// for as long as the test runs.
package testnet

import (
	"net"
	"testing"
)

// RefusedAddr returns a 127.0.0.1 address whose connections are refused
// until t ends.
//
// Opening a listener on port 0 and closing it gives an address that
// nothing listens on only for a moment: the port is free again, and the
// next listener anyone opens (the test's own server, or a test of another
// package running beside it) may be given it and answer. Here the port
// stays taken, by the client end of a connection held open until t ends:
// no listener can bind it meanwhile, and as nothing listens on it, a
// connection to it is refused.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client.LocalAddr().String()
}
