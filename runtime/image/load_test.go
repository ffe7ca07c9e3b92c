package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAsScratchImage(t *testing.T) {
	app := contextFile{name: "app", mode: 0o755, data: []byte("bin")}
	ca := contextFile{name: "ca.crt", mode: 0o644, data: []byte("ca")}
	for _, tc := range []struct {
		name       string
		dockerfile string
		want       *scratchImage // nil: goes to the builder
	}{
		{
			name:       "go image",
			dockerfile: "FROM scratch\nCOPY app /app\nCOPY ca.crt /etc/ssl/certs/ca-certificates.crt\nENTRYPOINT [\"/app\"]\n",
			want: &scratchImage{files: []contextFile{{name: "app", mode: 0o755, data: []byte("bin")},
				{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: []byte("ca")}}, entrypoint: []string{"/app"}},
		},
		{name: "not scratch", dockerfile: "FROM alpine\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"},
		{name: "a RUN", dockerfile: "FROM scratch\nCOPY app /app\nRUN x\nENTRYPOINT [\"/app\"]\n"},
		{name: "no entrypoint", dockerfile: "FROM scratch\nCOPY app /app\n"},
		{name: "shell-form entrypoint", dockerfile: "FROM scratch\nCOPY app /app\nENTRYPOINT /app\n"},
		{name: "copy into a directory", dockerfile: "FROM scratch\nCOPY app /bin/\nENTRYPOINT [\"/bin/app\"]\n"},
		{name: "copy of a file not in the context", dockerfile: "FROM scratch\nCOPY other /app\nENTRYPOINT [\"/app\"]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := asScratchImage([]contextFile{{name: "Dockerfile", data: []byte(tc.dockerfile)}, app, ca})
			if tc.want == nil {
				if ok {
					t.Errorf("read as a scratch image: %+v", got)
				}
				return
			}
			if !ok {
				t.Fatal("not read as a scratch image")
			}
			if diff := cmp.Diff(*tc.want, got, cmp.AllowUnexported(scratchImage{}, contextFile{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLayerTarHasParents(t *testing.T) {
	b, err := layerTar([]contextFile{{name: "etc/ssl/certs/ca.crt", mode: 0o644, data: []byte("ca")}, {name: "app", mode: 0o755, data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	names := readTar(t, b)
	want := []string{"etc/", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/ca.crt", "app"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

// readTar returns the names of a tar's entries, in order.
func readTar(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}
