package runtime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/orchestro/orchestro/cellspec"
)

// checkPorts reports the gateways Up would create whose host port another
// program holds, before anything is built or created: the engine would
// only find out when it starts the gateway, with a bind error that names
// neither the cell nor the setting, and leave the gateway created. A cell
// whose gateway exists is passed over: its port is its own.
func checkPorts(p *cellspec.Project, observed upObserved) error {
	exists := make(map[string]bool, len(observed.Gateways))
	for _, g := range observed.Gateways {
		exists[g.cell] = true
	}
	var errs []error
	for _, cell := range p.Cells {
		if exists[cell.Name] {
			continue
		}
		if !portFree(cell.Gateway.Port) {
			errs = append(errs, fmt.Errorf("cell %s: port %d on 127.0.0.1 is in use (another program, or another project's gateway): %s", cell.Name, cell.Gateway.Port, portSetting(cell)))
		}
		for i, l := range cell.Gateway.Listeners {
			if !portFree(l.Port) {
				errs = append(errs, fmt.Errorf("cell %s: port %d on 127.0.0.1, which service %s publishes, is in use (another program, or another project's gateway): change %s in %s",
					cell.Name, l.Port, l.Service, listenerSetting(cell, i), displayFile(cell.File)))
			}
		}
	}
	return errors.Join(errs...)
}

// portFree reports whether a TCP port on 127.0.0.1 can be listened on.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// listenerSetting names the setting of a cell's i-th listener: a compose
// service's ports, or the cell file's key.
func listenerSetting(cell *cellspec.Cell, i int) string {
	if cell.Source == "compose" {
		return "services." + cell.Gateway.Listeners[i].Service + ".ports"
	}
	return fmt.Sprintf("gateway.listeners[%d].port", i)
}

// displayFile is a file as the user would write it: relative to the
// working directory when it lies beneath it.
func displayFile(file string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, file); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return file
}

// portVar finds the variable a gateway port reads in a cell file:
// port: ${NAME} or ${NAME:-8081}, quoted or not.
var portVar = regexp.MustCompile(`(?m)^\s*port:\s*["']?\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// portSetting says what sets a cell's gateway port: the variable its file
// reads, when it reads one, else the key.
func portSetting(cell *cellspec.Cell) string {
	file := displayFile(cell.File)
	key := "gateway.port"
	if cell.Source == "compose" {
		key = "x-orchestro.gateway.port"
	}
	if raw, err := os.ReadFile(cell.File); err == nil {
		if m := portVar.FindSubmatch(raw); m != nil {
			return fmt.Sprintf("set %s to a free port (%s in %s reads it)", m[1], key, file)
		}
	}
	return fmt.Sprintf("change %s in %s", key, file)
}
