//go:build !linux

package proxy

import "net"

// sockPeek is the portable stand-in for Linux's peek at a socket's receive
// queue: it cannot tell, so idle connections are taken as quiet and
// waiting for a request holds a read buffer. The gateway itself always
// runs on Linux.
type sockPeek struct{}

func (sp *sockPeek) init(net.Conn) {}

func (sp *sockPeek) quiet() bool { return true }

func (sp *sockPeek) wait() (bool, error) { return false, nil }
