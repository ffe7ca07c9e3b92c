package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// probeUsage is the synopsis ProbeMain prints with an argument error.
const probeUsage = "usage: orchestro probe http PORT PATH [TIMEOUT] | orchestro probe tcp PORT [TIMEOUT]"

// ProbeMain carries out one health check against the local host and
// returns the process exit code: 0 when the check passes, 1 otherwise,
// after one line on stderr saying why. It is the `orchestro probe` command
// that a container's HEALTHCHECK runs where the image has no wget or curl
// (see image.WithProbe); args are what follows "probe":
//
//	http PORT PATH [TIMEOUT]  a GET of http://127.0.0.1:PORT/PATH answers 2xx or 3xx
//	tcp PORT [TIMEOUT]        a TCP connection to 127.0.0.1:PORT opens
//
// TIMEOUT is a Go duration ("2s", "500ms") or a whole number of seconds, and
// defaults to cellspec.DefaultHealthTimeout. Wrong arguments exit 1 too:
// Docker reserves exit code 2 of a health check.
func ProbeMain(args []string, stderr io.Writer) int {
	if err := runProbe(context.Background(), args); err != nil {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		fmt.Fprintf(stderr, "probe: %s\n", msg)
		return 1
	}
	return 0
}

// runProbe parses args and runs the check they describe.
func runProbe(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("no check given; " + probeUsage)
	}
	kind, rest := args[0], args[1:]
	var fixed int // arguments before the optional timeout
	switch kind {
	case "http":
		fixed = 2
	case "tcp":
		fixed = 1
	default:
		return fmt.Errorf("unknown check %q; %s", kind, probeUsage)
	}
	if len(rest) < fixed || len(rest) > fixed+1 {
		return fmt.Errorf("%s takes %d or %d arguments, got %d; %s", kind, fixed, fixed+1, len(rest), probeUsage)
	}
	port, err := parseProbePort(rest[0])
	if err != nil {
		return err
	}
	timeout := cellspec.DefaultHealthTimeout.D()
	if len(rest) > fixed {
		if timeout, err = parseProbeTimeout(rest[fixed]); err != nil {
			return err
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var c Checker
	if kind == "http" {
		p := rest[1]
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		c = &HTTPChecker{URL: "http://" + addr + p, Timeout: timeout}
	} else {
		c = &TCPChecker{Addr: addr, Timeout: timeout}
	}
	return c.Check(ctx)
}

func parseProbePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

func parseProbeTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, serr := strconv.Atoi(s)
		if serr != nil || secs > int(time.Duration(1<<62)/time.Second) {
			return 0, fmt.Errorf("timeout %q is not a duration such as 2s or 500ms", s)
		}
		d = time.Duration(secs) * time.Second
	}
	if d <= 0 {
		return 0, fmt.Errorf("timeout %q must be positive", s)
	}
	return d, nil
}
