package runtime

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/orchestro/orchestro/cellspec"
)

func TestCheckPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	free := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()

	dir := t.TempDir()
	withVar := filepath.Join(dir, "shop.yaml")
	if err := os.WriteFile(withVar, []byte("cell: shop\ngateway:\n  port: ${SHOP_PORT:-8081}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(plain, []byte("cell: users\ngateway:\n  port: 8082\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cell := func(name, file string, port int) *cellspec.Cell {
		return &cellspec.Cell{Name: name, File: file, Source: "cell", Gateway: cellspec.Gateway{Port: port}}
	}

	for _, tc := range []struct {
		name     string
		cells    []*cellspec.Cell
		observed upObserved
		want     []string // substrings of the error; none: no error
	}{
		{name: "free", cells: []*cellspec.Cell{cell("shop", withVar, free)}},
		{
			name:  "taken, the file reads a variable",
			cells: []*cellspec.Cell{cell("shop", withVar, taken)},
			want:  []string{"cell shop: port " + strconv.Itoa(taken) + " on 127.0.0.1 is in use", "set SHOP_PORT to a free port", "gateway.port in "},
		},
		{
			name:  "taken, a number in the file",
			cells: []*cellspec.Cell{cell("users", plain, taken)},
			want:  []string{"cell users: port " + strconv.Itoa(taken), "change gateway.port in "},
		},
		{
			name:     "taken by the cell's own gateway",
			cells:    []*cellspec.Cell{cell("shop", withVar, taken)},
			observed: upObserved{Gateways: []observedGateway{{gateway: gateway{cell: "shop"}}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPorts(&cellspec.Project{Name: "p", Cells: tc.cells}, tc.observed)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("checkPorts: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("checkPorts: no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
