package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/build"
	dockerimage "github.com/docker/docker/api/types/image"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
)

// ProbeBinary is where WithProbe puts the orchestro binary in a service
// image; ProbeTest's HEALTHCHECK commands run it.
const ProbeBinary = "/.orchestro/orchestro"

// gatewayBinary is where the gateway image holds the orchestro binary when
// its entrypoint does not say.
const gatewayBinary = "/orchestro"

// probeTagMark separates a base image's tag from the hash in the tag of
// its probe image.
const probeTagMark = "-probe-"

// probeLayout names how WithProbe builds, in its tag hash: change it when
// the Dockerfile changes, so old probe images are not reused.
const probeLayout = "orchestro probe image v1"

// maxTag is the longest tag Docker accepts.
const maxTag = 128

// NeedsProbe reports whether the health check h needs the orchestro
// binary inside the service's image to run as the container's own
// HEALTHCHECK: HTTP and TCP checks do; an exec check runs the service's
// own command, and no check needs nothing.
func NeedsProbe(h *cellspec.Health) bool {
	if h == nil {
		return false
	}
	k := h.Kind()
	return k == "http" || k == "tcp"
}

// ProbeTest returns the Test of the container HEALTHCHECK that carries out
// the health check h of a service listening on port inside its container:
//
//	http: ["CMD", "/.orchestro/orchestro", "probe", "http", PORT, PATH, TIMEOUT]
//	tcp:  ["CMD", "/.orchestro/orchestro", "probe", "tcp", PORT, TIMEOUT]
//	exec: ["CMD", h.Exec...]
//
// TIMEOUT is h's timeout (cellspec.DefaultHealthTimeout when unset) in Go
// duration syntax. The http and tcp forms need an image made by
// WithProbe. ProbeTest returns nil when h is nil or names no check.
func ProbeTest(h *cellspec.Health, port int) []string {
	if h == nil {
		return nil
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = cellspec.DefaultHealthTimeout
	}
	switch h.Kind() {
	case "http":
		p := h.HTTP
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		return []string{"CMD", ProbeBinary, "probe", "http", strconv.Itoa(port), p, timeout.String()}
	case "tcp":
		return []string{"CMD", ProbeBinary, "probe", "tcp", strconv.Itoa(port), timeout.String()}
	case "exec":
		return append([]string{"CMD"}, h.Exec...)
	}
	return nil
}

// WithProbe returns an image that is base with the orchestro binary of the
// gateway image gatewayImage added at ProbeBinary, so that ProbeTest's
// HEALTHCHECK commands run in it even when base is FROM scratch. It is
// built by the engine's classic builder from a Dockerfile alone:
//
//	FROM <base image ID>
//	COPY --from=<gateway image ID> /orchestro /.orchestro/orchestro
//
// and tagged "<base repository>:<base tag>-probe-<hash>", where hash is the
// first 12 hex digits of a SHA-256 over the two image IDs: an existing
// image with that tag is the same image and is reused. The new image
// inherits every label of base, its io.orchestro.* ones included, so what
// removes the project's images by label removes it too; it is labelled
// io.orchestro.managed even when base is not. Build output goes to w,
// which may be nil.
func WithProbe(ctx context.Context, eng engine.Engine, base, gatewayImage string, w io.Writer) (string, error) {
	w = orDiscard(w)
	baseImg, err := eng.ImageInspect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("add the health probe to %s: inspect the image: %w", base, err)
	}
	gwImg, err := eng.ImageInspect(ctx, gatewayImage)
	if err != nil {
		return "", fmt.Errorf("add the health probe to %s: inspect the gateway image %s: %w", base, gatewayImage, err)
	}
	bin := gatewayBinary
	if gwImg.Config != nil && len(gwImg.Config.Entrypoint) > 0 && path.IsAbs(gwImg.Config.Entrypoint[0]) {
		bin = gwImg.Config.Entrypoint[0]
	}
	baseRef, gwRef := orRef(baseImg.ID, base), orRef(gwImg.ID, gatewayImage)
	tag := probeTag(base, baseImg, gwRef, bin)

	exists, err := Exists(ctx, eng, tag)
	if err != nil {
		return "", fmt.Errorf("add the health probe to %s: inspect image %s: %w", base, tag, err)
	}
	if exists {
		fmt.Fprintf(w, "image %s is up to date\n", tag)
		return tag, nil
	}

	// FROM carries every label of base over, its io.orchestro.* ones
	// included. Each label set here costs the classic builder a step (a
	// container and a commit), so only io.orchestro.managed is, and only
	// when base lacks it: the new image is orchestro's own.
	var labels map[string]string
	if baseImg.Config == nil || baseImg.Config.Labels[engine.LabelManaged] != "true" {
		labels = map[string]string{engine.LabelManaged: "true"}
	}
	dockerfile := fmt.Sprintf("FROM %s\nCOPY --from=%s %s %s\n", baseRef, gwRef, bin, ProbeBinary)
	var buf bytes.Buffer
	if err := writeContextTar(&buf, []contextFile{{name: "Dockerfile", mode: 0o644, data: []byte(dockerfile)}}); err != nil {
		return "", fmt.Errorf("add the health probe to %s: %w", base, err)
	}
	opts := build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Labels:      labels,
		Version:     build.BuilderV1,
		Remove:      true,
		ForceRemove: true,
	}
	resp, err := eng.ImageBuild(ctx, &buf, opts)
	if err != nil {
		return "", fmt.Errorf("add the health probe to %s: build image %s: %w", base, tag, err)
	}
	defer resp.Body.Close()
	if err := newStreamDecoder(w).decode(resp.Body); err != nil {
		return "", fmt.Errorf("add the health probe to %s: build image %s: %w", base, tag, err)
	}
	return tag, nil
}

// probeTag is the tag of base's probe image. The hash covers the image
// IDs, not their names, so a rebuilt base or gateway gives a new tag.
func probeTag(base string, baseImg dockerimage.InspectResponse, gwRef, bin string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nbase %s\ngateway %s\nbinary %s\n", probeLayout, orRef(baseImg.ID, base), gwRef, bin)
	sum := hex.EncodeToString(h.Sum(nil))[:12]
	repo, tag := localName(base, baseImg)
	if limit := maxTag - len(probeTagMark) - len(sum); len(tag) > limit {
		tag = tag[:limit]
	}
	return repo + ":" + tag + probeTagMark + sum
}

// orRef returns the image ID, or the reference when the engine reported
// no ID.
func orRef(id, ref string) string {
	if id == "" {
		return ref
	}
	return id
}
