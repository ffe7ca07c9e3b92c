package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/google/go-cmp/cmp"
)

const (
	testImageID = "sha256:3f2a9c1d0e1f00112233445566778899aabbccddeeff00112233445566778899"
	testDigest  = "sha256:9e8d7c6b5a4f39281706f5e4d3c2b1a09e8d7c6b5a4f39281706f5e4d3c2b1a0"
)

// fakePusher is a Pusher that knows images by name and ID and answers a
// push with a canned message stream.
type fakePusher struct {
	images  map[string]dockerimage.InspectResponse // by every name and the ID
	stream  string                                 // the push's message stream
	pushErr error
	tagErr  error
	calls   []string
	auth    string
}

func newFakePusher(names ...string) *fakePusher {
	f := &fakePusher{images: map[string]dockerimage.InspectResponse{}}
	img := dockerimage.InspectResponse{ID: testImageID, RepoTags: names}
	f.images[testImageID] = img
	for _, n := range names {
		f.images[n] = img
	}
	return f
}

func (f *fakePusher) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (dockerimage.InspectResponse, error) {
	f.calls = append(f.calls, "ImageInspect "+ref)
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	// An ID cut short, as the engine resolves it.
	if len(ref) >= 12 && strings.HasPrefix(testImageID, "sha256:"+strings.TrimPrefix(ref, "sha256:")) {
		return f.images[testImageID], nil
	}
	return dockerimage.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("No such image: " + ref)
}

func (f *fakePusher) ImageTag(_ context.Context, source, target string) error {
	f.calls = append(f.calls, "ImageTag "+source+" "+target)
	if f.tagErr != nil {
		return f.tagErr
	}
	img := f.images[source]
	img.RepoTags = append(img.RepoTags, target)
	f.images[target] = img
	return nil
}

func (f *fakePusher) ImagePush(_ context.Context, ref string, o dockerimage.PushOptions) (io.ReadCloser, error) {
	f.calls = append(f.calls, "ImagePush "+ref)
	f.auth = o.RegistryAuth
	if f.pushErr != nil {
		return nil, f.pushErr
	}
	return io.NopCloser(strings.NewReader(f.stream)), nil
}

// pushStream is what a push of a one-layer image sends, with its aux
// message unless digest is empty.
func pushStream(repo, digest string) string {
	s := `{"status":"The push refers to repository [` + repo + `]"}
{"status":"Preparing","progressDetail":{},"id":"5f70bf18a086"}
{"status":"Pushing","progressDetail":{"current":512,"total":1024},"progress":"[=========>     ]     512B/1.024kB","id":"5f70bf18a086"}
{"status":"Pushed","progressDetail":{},"id":"5f70bf18a086"}
`
	if digest != "" {
		s += `{"status":"3f2a9c1d: digest: ` + digest + ` size: 528"}
{"progressDetail":{},"aux":{"Tag":"3f2a9c1d","Digest":"` + digest + `","Size":528}}
`
	}
	return s
}

func TestParseRegistry(t *testing.T) {
	valid := []struct{ in, host, prefix, str string }{
		{"127.0.0.1:5000", "127.0.0.1:5000", "", "127.0.0.1:5000"},
		{"localhost", "localhost", "", "localhost"},
		{"localhost:5000/team", "localhost:5000", "team", "localhost:5000/team"},
		{"registry.example.com", "registry.example.com", "", "registry.example.com"},
		{"Registry.Example.com:443/team/shop/", "Registry.Example.com:443", "team/shop", "Registry.Example.com:443/team/shop"},
		{"[::1]:5000/a_b.c-d", "[::1]:5000", "a_b.c-d", "[::1]:5000/a_b.c-d"},
		{"myreg:5000", "myreg:5000", "", "myreg:5000"},
	}
	for _, v := range valid {
		r, err := ParseRegistry(v.in)
		if err != nil {
			t.Errorf("ParseRegistry(%q): %v", v.in, err)
			continue
		}
		if r.Host != v.host || r.Prefix != v.prefix || r.String() != v.str {
			t.Errorf("ParseRegistry(%q) = %+v (%s), want host %q prefix %q (%s)", v.in, r, r, v.host, v.prefix, v.str)
		}
	}
	invalid := []struct{ in, want string }{
		{"", `registry "": give HOST[:PORT][/PREFIX]`},
		{"/", `registry "/": give HOST[:PORT][/PREFIX]`},
		{"http://x", `registry "http://x": give HOST[:PORT][/PREFIX], without a scheme`},
		{"https://registry.example.com", `registry "https://registry.example.com": give HOST[:PORT][/PREFIX], without a scheme`},
		{"user@registry.example.com", `registry "user@registry.example.com": give HOST[:PORT][/PREFIX], without credentials or a digest`},
		{"reg istry:5000", `registry "reg istry:5000": it contains white space; give HOST[:PORT][/PREFIX]`},
		{"myreg", `registry "myreg": host "myreg" has neither a '.' nor a port and is not localhost, so Docker would take it for a Docker Hub namespace; give myreg:PORT or a full domain name`},
		{"myreg/team", `registry "myreg/team": host "myreg" has neither a '.' nor a port`},
		{":5000", `registry ":5000": the host is empty; give HOST[:PORT][/PREFIX]`},
		{"/team", `registry "/team": the host is empty`},
		{"localhost:", `registry "localhost:": the port is empty`},
		{"localhost:http", `registry "localhost:http": port "http" is not a number from 1 to 65535`},
		{"localhost:0", `registry "localhost:0": port "0" is not a number from 1 to 65535`},
		{"localhost:65536", `registry "localhost:65536": port "65536" is not a number from 1 to 65535`},
		{"my_reg.example.com", `registry "my_reg.example.com": host "my_reg.example.com" is not a valid host name or IP address`},
		{"-reg.example.com", `host "-reg.example.com" is not a valid host name or IP address`},
		{"reg..example.com", `host "reg..example.com" is not a valid host name`},
		{"[::1", `the IPv6 address "[::1" has no closing ']'`},
		{"[1.2.3.4]:5000", `[1.2.3.4] is not an IPv6 address`},
		{"[::1]x", `unexpected "x" after the IPv6 address [::1]`},
		{"localhost:5000/Team", `registry "localhost:5000/Team": path component "Team" of the prefix must be lowercase letters and digits, separated by '.', '_', '__' or '-'`},
		{"localhost:5000/team//shop", `the prefix "team//shop" has an empty path component`},
		{"localhost:5000/team-", `path component "team-" of the prefix must be`},
		{"localhost:5000/app:1", `registry "localhost:5000/app:1": the prefix "app:1" holds a tag ("app:1"); give HOST[:PORT][/PREFIX] only`},
	}
	for _, v := range invalid {
		_, err := ParseRegistry(v.in)
		if err == nil || !strings.Contains(err.Error(), v.want) {
			t.Errorf("ParseRegistry(%q) = %v, want an error containing %q", v.in, err, v.want)
		}
	}
}

func TestPushNaming(t *testing.T) {
	tests := []struct {
		name     string
		names    []string // the local image's names
		ref      string
		registry string
		target   string // the tag pushed
	}{
		{"service image", []string{"demo-shop-catalog:3f2a9c1d"}, "demo-shop-catalog:3f2a9c1d", "127.0.0.1:5000", "127.0.0.1:5000/demo-shop-catalog:3f2a9c1d"},
		{"with a prefix", []string{"demo-shop-catalog:3f2a9c1d"}, "demo-shop-catalog:3f2a9c1d", "registry.example.com/team/", "registry.example.com/team/demo-shop-catalog:3f2a9c1d"},
		{"no tag", []string{"orchestro-gateway"}, "orchestro-gateway", "localhost:5000", "localhost:5000/orchestro-gateway:latest"},
		{"registry host dropped", []string{"example.com:443/team/app:1.2"}, "example.com:443/team/app:1.2", "localhost:5000", "localhost:5000/team/app:1.2"},
		{"docker hub library dropped", []string{"docker.io/library/redis:7"}, "docker.io/library/redis:7", "localhost:5000", "localhost:5000/redis:7"},
		{"namespace kept", []string{"team/app:2"}, "team/app:2", "localhost:5000/x", "localhost:5000/x/team/app:2"},
		{"by digest", []string{"app@" + testDigest}, "app@" + testDigest, "localhost:5000", "localhost:5000/app:sha256-9e8d7c6b5a4f"},
		{"by ID, named", []string{"demo-shop-orders:abc123"}, testImageID, "localhost:5000", "localhost:5000/demo-shop-orders:abc123"},
		{"by short ID, named", []string{"demo-shop-orders:abc123"}, "3f2a9c1d0e1f", "localhost:5000", "localhost:5000/demo-shop-orders:abc123"},
		{"by ID, local name preferred", []string{"localhost:5000/x/demo-shop-orders:abc123", "demo-shop-orders:abc123"}, testImageID, "localhost:5000/x", "localhost:5000/x/demo-shop-orders:abc123"},
		{"by ID, only pushed before", []string{"localhost:5000/x/demo-shop-orders:abc123"}, testImageID, "localhost:5000/x", "localhost:5000/x/demo-shop-orders:abc123"},
		{"already in the registry", []string{"localhost:5000/x/team/app:7"}, "localhost:5000/x/team/app:7", "localhost:5000/x", "localhost:5000/x/team/app:7"},
		{"in another registry", []string{"localhost:5000/x/team/app:7"}, "localhost:5000/x/team/app:7", "localhost:6000", "localhost:6000/x/team/app:7"},
		{"by ID, unnamed", nil, testImageID, "localhost:5000", "localhost:5000/orchestro-image:3f2a9c1d0e1f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePusher(tt.names...)
			repo := tt.target[:strings.LastIndex(tt.target, ":")]
			f.stream = pushStream(repo, testDigest)
			var out bytes.Buffer
			got, err := Push(t.Context(), f, tt.ref, tt.registry, &out)
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if want := repo + "@" + testDigest; got != want {
				t.Errorf("Push = %s, want %s", got, want)
			}
			want := []string{"ImageInspect " + tt.ref, "ImageTag " + testImageID + " " + tt.target, "ImagePush " + tt.target}
			if diff := cmp.Diff(want, f.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPushStream(t *testing.T) {
	const ref = "demo-shop-catalog:3f2a9c1d"
	const target = "127.0.0.1:5000/demo-shop-catalog:3f2a9c1d"
	const repo = "127.0.0.1:5000/demo-shop-catalog"

	t.Run("digest from the aux message, progress without bars", func(t *testing.T) {
		f := newFakePusher(ref)
		f.stream = pushStream(repo, testDigest)
		var out bytes.Buffer
		got, err := Push(t.Context(), f, ref, "127.0.0.1:5000", &out)
		if err != nil || got != repo+"@"+testDigest {
			t.Fatalf("Push = %s, %v; want %s@%s", got, err, repo, testDigest)
		}
		wantOut := "pushing " + ref + " as " + target + "\n" +
			"The push refers to repository [" + repo + "]\n" +
			"5f70bf18a086: Preparing\n" +
			"5f70bf18a086: Pushed\n" +
			"3f2a9c1d: digest: " + testDigest + " size: 528\n"
		if diff := cmp.Diff(wantOut, out.String()); diff != "" {
			t.Errorf("progress (-want +got):\n%s", diff)
		}
		auth, err := base64.URLEncoding.DecodeString(f.auth)
		if err != nil || string(auth) != "{}" {
			t.Errorf("RegistryAuth = %q (%q, %v), want the base64 of {}", f.auth, auth, err)
		}
	})

	t.Run("digest from RepoDigests when the stream has none", func(t *testing.T) {
		f := newFakePusher(ref)
		f.stream = pushStream(repo, "")
		f.images[target] = dockerimage.InspectResponse{ID: testImageID, RepoDigests: []string{
			"127.0.0.1:5000/demo-shop-catalog-other@sha256:" + strings.Repeat("1", 64),
			repo + "@" + testDigest,
		}}
		// ImageTag must not overwrite the inspection set up above.
		tagged := &keepTagged{f}
		got, err := Push(t.Context(), tagged, ref, "127.0.0.1:5000", nil)
		if err != nil || got != repo+"@"+testDigest {
			t.Fatalf("Push = %s, %v; want %s@%s", got, err, repo, testDigest)
		}
		if last := f.calls[len(f.calls)-1]; last != "ImageInspect "+target {
			t.Errorf("last call = %s, want the inspection of %s", last, target)
		}
	})

	failures := []struct {
		name   string
		setup  func(f *fakePusher)
		ref    string
		reg    string
		want   string
		noPush bool
	}{
		{"registry error in the stream", func(f *fakePusher) {
			f.stream = `{"status":"The push refers to repository [` + repo + `]"}
{"errorDetail":{"message":"Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused"},"error":"Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused"}
{"status":"never read"}`
		}, ref, "127.0.0.1:5000", `push demo-shop-catalog:3f2a9c1d to 127.0.0.1:5000: Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused`, false},
		{"error without detail", func(f *fakePusher) {
			f.stream = `{"error":"denied: requested access to the resource is denied"}`
		}, ref, "127.0.0.1:5000", "push demo-shop-catalog:3f2a9c1d to 127.0.0.1:5000: denied: requested access to the resource is denied", false},
		{"no digest at all", func(f *fakePusher) {
			f.stream = pushStream(repo, "")
		}, ref, "127.0.0.1:5000", "push demo-shop-catalog:3f2a9c1d to 127.0.0.1:5000: the engine reported no digest for " + target, false},
		{"malformed digest", func(f *fakePusher) {
			f.stream = pushStream(repo, "sha256:nothex!")
		}, ref, "127.0.0.1:5000", `the engine reported a malformed digest "sha256:nothex!"`, false},
		{"broken stream", func(f *fakePusher) {
			f.stream = `{"status":"Preparing"}{"status":`
		}, ref, "127.0.0.1:5000", "push demo-shop-catalog:3f2a9c1d to 127.0.0.1:5000: read engine output: unexpected EOF", false},
		{"push refused", func(f *fakePusher) {
			f.pushErr = errors.New("Error response from daemon: bad request")
		}, ref, "127.0.0.1:5000", "push demo-shop-catalog:3f2a9c1d to 127.0.0.1:5000: Error response from daemon: bad request", false},
		{"tag refused", func(f *fakePusher) {
			f.tagErr = errors.New("no space left")
		}, ref, "127.0.0.1:5000", "push demo-shop-catalog:3f2a9c1d: tag it " + target + ": no space left", true},
		{"image missing", nil, "demo-shop-catalog:missing", "127.0.0.1:5000", "push demo-shop-catalog:missing: the image is not present locally", true},
		{"bad registry", nil, ref, "http://127.0.0.1:5000", `registry "http://127.0.0.1:5000": give HOST[:PORT][/PREFIX], without a scheme`, true},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePusher(ref)
			if tt.setup != nil {
				tt.setup(f)
			}
			got, err := Push(t.Context(), f, tt.ref, tt.reg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Push = %q, %v; want an error containing %q", got, err, tt.want)
			}
			if got != "" {
				t.Errorf("Push returned %q with its error", got)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			for _, c := range f.calls {
				if tt.noPush && strings.HasPrefix(c, "ImagePush") {
					t.Errorf("pushed after the failure: %s", c)
				}
			}
		})
	}
}

// keepTagged tags nothing, so an inspection set up in advance stands.
type keepTagged struct{ *fakePusher }

func (k *keepTagged) ImageTag(_ context.Context, source, target string) error {
	k.calls = append(k.calls, "ImageTag "+source+" "+target)
	return nil
}
