package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Pusher is the part of the Docker Engine API that Push uses. The SDK
// client satisfies it.
type Pusher interface {
	// ImageInspect returns a local image, or a not-found error.
	ImageInspect(ctx context.Context, imageID string, options ...client.ImageInspectOption) (dockerimage.InspectResponse, error)
	// ImageTag gives a local image another name.
	ImageTag(ctx context.Context, source, target string) error
	// ImagePush uploads a tagged image and returns the JSON message stream.
	ImagePush(ctx context.Context, image string, options dockerimage.PushOptions) (io.ReadCloser, error)
}

// The SDK client is the real Pusher.
var _ Pusher = (*client.Client)(nil)

// Registry is where Push sends images: a registry host, with its port when
// it has one, and an optional repository prefix inside it.
type Registry struct {
	// Host is HOST or HOST:PORT, such as "127.0.0.1:5000" or
	// "registry.example.com".
	Host string
	// Prefix is prepended to every repository pushed, such as "team/shop";
	// empty for none.
	Prefix string
}

// String returns HOST[:PORT][/PREFIX].
func (r Registry) String() string {
	if r.Prefix == "" {
		return r.Host
	}
	return r.Host + "/" + r.Prefix
}

// Repository is the full name, in the registry, of the repository repo.
func (r Registry) Repository(repo string) string {
	return r.String() + "/" + repo
}

const registryForm = "HOST[:PORT][/PREFIX]"

var (
	// hostLabel is one dot-separated part of a host name.
	hostLabel = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$`)
	// pathComponent is one slash-separated part of a repository path, as
	// the reference grammar of Docker allows it.
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	// digestPattern is a digest as registries report them.
	digestPattern = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// ParseRegistry reads a registry given as HOST[:PORT][/PREFIX], such as
// "127.0.0.1:5000", "registry.example.com/team" or "localhost:5000". A
// trailing slash is ignored. The host must look like one to Docker (hold a
// '.' or a port, or be localhost): otherwise Docker would read it as a
// Docker Hub namespace and push there. The error names what is wrong, so a
// command can check its flag before anything starts.
func ParseRegistry(s string) (Registry, error) {
	fail := func(format string, args ...any) (Registry, error) {
		return Registry{}, fmt.Errorf("registry %q: "+format, append([]any{s}, args...)...)
	}
	if strings.TrimSpace(s) == "" {
		return fail("give %s", registryForm)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return fail("it contains white space; give %s", registryForm)
	}
	if strings.Contains(s, "://") {
		return fail("give %s, without a scheme", registryForm)
	}
	if strings.Contains(s, "@") {
		return fail("give %s, without credentials or a digest", registryForm)
	}
	trimmed := strings.TrimRight(s, "/")
	if trimmed == "" {
		return fail("give %s", registryForm)
	}
	host, prefix, _ := strings.Cut(trimmed, "/")
	if err := checkRegistryHost(host); err != nil {
		return fail("%s", err)
	}
	if prefix != "" {
		for _, c := range strings.Split(prefix, "/") {
			switch {
			case c == "":
				return fail("the prefix %q has an empty path component", prefix)
			case strings.Contains(c, ":"):
				return fail("the prefix %q holds a tag (%q); give %s only", prefix, c, registryForm)
			case !pathComponent.MatchString(c):
				return fail("path component %q of the prefix must be lowercase letters and digits, separated by '.', '_', '__' or '-'", c)
			}
		}
	}
	return Registry{Host: host, Prefix: prefix}, nil
}

// checkRegistryHost checks HOST[:PORT].
func checkRegistryHost(hostport string) error {
	if hostport == "" {
		return fmt.Errorf("the host is empty; give %s", registryForm)
	}
	host, port := hostport, ""
	switch {
	case strings.HasPrefix(hostport, "["):
		end := strings.Index(hostport, "]")
		if end < 0 {
			return fmt.Errorf("the IPv6 address %q has no closing ']'", hostport)
		}
		host, port = hostport[:end+1], hostport[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return fmt.Errorf("unexpected %q after the IPv6 address %s", port, host)
		}
		port = strings.TrimPrefix(port, ":")
		if ip := net.ParseIP(host[1 : len(host)-1]); ip == nil || ip.To4() != nil {
			return fmt.Errorf("%s is not an IPv6 address", host)
		}
		if port == "" && strings.HasSuffix(hostport, ":") {
			return fmt.Errorf("the port is empty; give %s", registryForm)
		}
	default:
		if h, p, ok := strings.Cut(hostport, ":"); ok {
			host, port = h, p
			if port == "" {
				return fmt.Errorf("the port is empty; give %s", registryForm)
			}
		}
		if host == "" {
			return fmt.Errorf("the host is empty; give %s", registryForm)
		}
		for _, l := range strings.Split(host, ".") {
			if !hostLabel.MatchString(l) {
				return fmt.Errorf("host %q is not a valid host name or IP address", host)
			}
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.HasPrefix(port, "+") {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	if port == "" && !strings.Contains(host, ".") && !strings.HasPrefix(host, "[") && host != "localhost" {
		return fmt.Errorf("host %q has neither a '.' nor a port and is not localhost, so Docker would take it for a Docker Hub namespace; give %s:PORT or a full domain name", host, host)
	}
	return nil
}

// emptyAuth is the X-Registry-Auth header of an anonymous push: the base64
// of an empty JSON object.
var emptyAuth = base64.URLEncoding.EncodeToString([]byte("{}"))

// Push tags the local image ref (a name such as "demo-shop-catalog:3f2a9c1d"
// or an image ID) into registry, given as HOST[:PORT][/PREFIX], pushes it
// anonymously and returns the pushed image by digest,
// "<registry>/<repo>@sha256:…", the form every node of a cluster can pull
// exactly.
//
// The repository is the ref's repository path without its registry host
// ("demo-shop-catalog", or "team/app" for "example.com/team/app:1"; a name
// already in registry keeps its repository there); the tag is the ref's,
// kept as given since orchestro's tags name content ("latest" when the ref
// has none). An image ID is pushed under its first name without a registry
// host (else its first name), or as orchestro-image:<12 hex digits of the
// ID> when it has none. The new local tag is left in place: it is the same image, so it goes
// when the image does.
//
// Status lines of the push go to w (which may be nil), progress bars
// excepted. An error the registry reports in the push stream fails Push
// with the registry's message.
func Push(ctx context.Context, eng Pusher, ref, registry string, w io.Writer) (string, error) {
	w = orDiscard(w)
	reg, err := ParseRegistry(registry)
	if err != nil {
		return "", err
	}
	img, err := eng.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("push %s: the image is not present locally", ref)
		}
		return "", fmt.Errorf("push %s: inspect the image: %w", ref, err)
	}
	repo, tag := localName(ref, img)
	// An image already named in this registry keeps its repository there;
	// any other loses its registry host.
	if r, ok := strings.CutPrefix(repo, reg.String()+"/"); ok {
		repo = r
	} else {
		repo = withoutDomain(repo)
	}
	name := reg.Repository(repo)
	if len(name) > 255 {
		return "", fmt.Errorf("push %s: the repository name %s is longer than 255 characters", ref, name)
	}
	target := name + ":" + tag
	fmt.Fprintf(w, "pushing %s as %s\n", ref, target)
	source := img.ID
	if source == "" {
		source = ref
	}
	if err := eng.ImageTag(ctx, source, target); err != nil {
		return "", fmt.Errorf("push %s: tag it %s: %w", ref, target, err)
	}
	body, err := eng.ImagePush(ctx, target, dockerimage.PushOptions{RegistryAuth: emptyAuth})
	if err != nil {
		return "", fmt.Errorf("push %s to %s: %w", ref, reg, err)
	}
	digest, err := decodePushStream(body, w)
	_ = body.Close()
	if err != nil {
		return "", fmt.Errorf("push %s to %s: %w", ref, reg, err)
	}
	if digest == "" {
		// An engine that sends no aux message still records the digest
		// it pushed under.
		pushed, err := eng.ImageInspect(ctx, target)
		if err != nil {
			return "", fmt.Errorf("push %s to %s: inspect %s after the push: %w", ref, reg, target, err)
		}
		for _, rd := range pushed.RepoDigests {
			if d, ok := strings.CutPrefix(rd, name+"@"); ok {
				digest = d
				break
			}
		}
		if digest == "" {
			return "", fmt.Errorf("push %s to %s: the engine reported no digest for %s", ref, reg, target)
		}
	}
	if !digestPattern.MatchString(digest) {
		return "", fmt.Errorf("push %s to %s: the engine reported a malformed digest %q", ref, reg, digest)
	}
	return name + "@" + digest, nil
}

// pushMessage is one message of the engine's push stream.
type pushMessage struct {
	Status      string `json:"status"`
	Progress    string `json:"progress"`
	ID          string `json:"id"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux *struct {
		Tag    string `json:"Tag"`
		Digest string `json:"Digest"`
	} `json:"aux"`
}

// decodePushStream reads a push stream to its end. It writes status lines
// to w and returns the digest of the aux message, if any; an error message
// in the stream is returned as the error.
func decodePushStream(r io.Reader, w io.Writer) (digest string, err error) {
	dec := json.NewDecoder(r)
	for {
		var m pushMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return digest, nil
			}
			return "", fmt.Errorf("read engine output: %w", err)
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			msg = strings.Join(strings.Fields(msg), " ")
			if msg == "" {
				msg = "the engine reported an error without a message"
			}
			return "", errors.New(msg)
		}
		if m.Aux != nil && m.Aux.Digest != "" {
			digest = m.Aux.Digest
		}
		if m.Status != "" && m.Progress == "" {
			if m.ID != "" {
				fmt.Fprintf(w, "%s: %s\n", m.ID, m.Status)
			} else {
				fmt.Fprintln(w, m.Status)
			}
		}
	}
}

// imageIDRepo names, in a registry, an image pushed by an ID that has no
// local name.
const imageIDRepo = "orchestro-image"

// localName splits the local image ref, whose inspection is img, into its
// repository (with its registry host, if it names one) and a tag. A ref
// without a tag gets "latest"; a ref by digest only gets
// "<algorithm>-<12 hex digits>". A ref that is the image's ID (whole or
// cut short) uses the image's first name, else imageIDRepo and the ID's
// first 12 hex digits.
func localName(ref string, img dockerimage.InspectResponse) (repo, tag string) {
	if isIDRef(ref, img.ID) {
		// A local name (one without a registry host) is preferred to the
		// names of earlier pushes.
		for _, name := range img.RepoTags {
			if r, _ := localName(name, dockerimage.InspectResponse{}); withoutDomain(r) == r {
				return localName(name, dockerimage.InspectResponse{})
			}
		}
		if len(img.RepoTags) > 0 {
			return localName(img.RepoTags[0], dockerimage.InspectResponse{})
		}
		_, hex, _ := strings.Cut(img.ID, ":")
		return imageIDRepo, shortHex(hex)
	}
	named, digest, _ := strings.Cut(ref, "@")
	repo, tag = named, ""
	if i := strings.LastIndex(named, ":"); i > strings.LastIndex(named, "/") {
		repo, tag = named[:i], named[i+1:]
	}
	switch {
	case tag != "":
	case digest != "":
		algo, hex, _ := strings.Cut(digest, ":")
		tag = algo + "-" + shortHex(hex)
	default:
		tag = "latest"
	}
	return repo, tag
}

// isIDRef reports whether ref names the image with ID id by that ID:
// "sha256:<hex>" or bare hex, whole or a prefix of at least 12 digits.
func isIDRef(ref, id string) bool {
	if id == "" {
		return false
	}
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) < 12 || strings.Trim(hex, "0123456789abcdef") != "" {
		return false
	}
	return strings.HasPrefix(id, "sha256:"+hex)
}

func shortHex(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// withoutDomain drops the registry host from a repository name, and Docker
// Hub's implicit library/ namespace: "example.com/team/app" is "team/app",
// "docker.io/library/redis" is "redis".
func withoutDomain(repo string) string {
	first, rest, ok := strings.Cut(repo, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if first == "docker.io" || first == "index.docker.io" {
			rest = strings.TrimPrefix(rest, "library/")
		}
		return rest
	}
	return repo
}
