package image

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orchestro/orchestro/runtime/engine"
)

// EnvGatewayImage names a published gateway image to use instead of one
// built from the orchestro binary, for machines whose orchestro binary
// cannot run in a linux container (macOS, Windows, cgo builds).
const EnvGatewayImage = "ORCHESTRO_GATEWAY_IMAGE"

// GatewayRepo is the repository of the locally built gateway images.
const GatewayRepo = "orchestro-gateway"

// Gateway returns the image the cell gateways run. An image named by
// override (a command-line flag) or by $ORCHESTRO_GATEWAY_IMAGE is used as
// is, pulled if missing. Otherwise the running orchestro binary itself is
// packed into a FROM scratch image, orchestro-gateway:<hash>, with
// ENTRYPOINT ["/orchestro", "gateway"]; that needs a static linux binary
// for the engine's architecture. An existing image of the same binary is
// reused.
func Gateway(ctx context.Context, eng engine.Engine, override string, progress io.Writer) (string, error) {
	ref := override
	if ref == "" {
		ref = os.Getenv(EnvGatewayImage)
	}
	if ref != "" {
		if err := Ensure(ctx, eng, ref, progress); err != nil {
			return "", fmt.Errorf("gateway image: %w", err)
		}
		return ref, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("gateway image: locate the orchestro binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return buildGatewayImage(ctx, eng, exe, nil, progress)
}

// buildGatewayImage packs the binary at exe into the gateway image. Tests
// pass extra labels to find what they created.
func buildGatewayImage(ctx context.Context, eng engine.Engine, exe string, labels map[string]string, progress io.Writer) (string, error) {
	goos, goarch, err := engine.Platform(ctx, eng)
	if err != nil {
		return "", fmt.Errorf("gateway image: %w", err)
	}
	if goos != "linux" {
		return "", fmt.Errorf("gateway image: the engine runs %s containers; the gateway needs a linux engine", goos)
	}
	if err := checkStaticELF(exe, goarch); err != nil {
		return "", fmt.Errorf("the orchestro binary at %s is not a static linux/%s executable (%w), so it cannot run as the gateway; build with CGO_ENABLED=0 GOOS=linux GOARCH=%s or set --gateway-image/%s",
			exe, goarch, err, goarch, EnvGatewayImage)
	}
	digest, err := fileDigest(exe)
	if err != nil {
		return "", fmt.Errorf("gateway image: %w", err)
	}
	tag := GatewayRepo + ":" + digest[:12]
	exists, err := Exists(ctx, eng, tag)
	if err != nil {
		return "", fmt.Errorf("gateway image: inspect image %s: %w", tag, err)
	}
	if exists {
		return tag, nil
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		return "", fmt.Errorf("gateway image: read %s: %w", exe, err)
	}
	// The image is built under the digest of what was read.
	sum := sha256.Sum256(data)
	tag = GatewayRepo + ":" + hex.EncodeToString(sum[:])[:12]
	files := []contextFile{
		{name: "Dockerfile", mode: 0o644, data: []byte("FROM scratch\nCOPY orchestro /orchestro\nENTRYPOINT [\"/orchestro\", \"gateway\"]\n")},
		{name: "orchestro", mode: 0o755, data: data},
	}
	if err := buildFilesIfMissing(ctx, eng, tag, files, labels, progress); err != nil {
		return "", fmt.Errorf("gateway image: %w", err)
	}
	return tag, nil
}

// elfMachine maps a GOARCH name to its ELF machine type.
func elfMachine(goarch string) (elf.Machine, bool) {
	switch goarch {
	case "amd64":
		return elf.EM_X86_64, true
	case "arm64":
		return elf.EM_AARCH64, true
	case "386":
		return elf.EM_386, true
	case "arm":
		return elf.EM_ARM, true
	case "riscv64":
		return elf.EM_RISCV, true
	case "ppc64le":
		return elf.EM_PPC64, true
	case "s390x":
		return elf.EM_S390, true
	case "loong64":
		return elf.EM_LOONGARCH, true
	}
	return elf.EM_NONE, false
}

// checkStaticELF reports why the file at path cannot run, alone, in a
// FROM scratch linux container of architecture goarch: it must be an ELF
// executable for that machine with no program interpreter (the dynamic
// loader a scratch image does not have).
func checkStaticELF(path, goarch string) error {
	f, err := elf.Open(path)
	if err != nil {
		var ferr *elf.FormatError
		if errors.As(err, &ferr) {
			return errors.New("it is not an ELF executable")
		}
		return err
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("it is an ELF file of type %s, not an executable", f.Type)
	}
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		return fmt.Errorf("it is built for %s", strings.TrimPrefix(f.OSABI.String(), "ELFOSABI_"))
	}
	if want, ok := elfMachine(goarch); !ok {
		return fmt.Errorf("the engine architecture %s is not supported", goarch)
	} else if f.Machine != want {
		return fmt.Errorf("it is built for %s", machineName(f.Machine))
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, err := io.ReadAll(io.LimitReader(p.Open(), 4096))
		if err != nil || len(interp) == 0 {
			return errors.New("it is dynamically linked")
		}
		return fmt.Errorf("it is dynamically linked, interpreter %s", strings.TrimRight(string(interp), "\x00"))
	}
	return nil
}

// machineName names an ELF machine by its GOARCH name when there is one.
func machineName(m elf.Machine) string {
	for _, arch := range []string{"amd64", "arm64", "386", "arm", "riscv64", "ppc64le", "s390x", "loong64"} {
		if em, _ := elfMachine(arch); em == m {
			return arch
		}
	}
	return strings.TrimPrefix(m.String(), "EM_")
}

// fileDigest returns the hex SHA-256 of the file at path. Every up packs
// the orchestro binary, tens of megabytes, so its digest is kept in the
// user's cache directory under the file's identity: its path, size and
// modification time. A file modified in the last few seconds is hashed
// without keeping its digest, since a write within the clock's
// granularity could leave the identity unchanged.
func fileDigest(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	keep := digestPath(path, fi)
	if keep != "" {
		if b, err := os.ReadFile(keep); err == nil && len(b) == sha256.Size*2 {
			return string(b), nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if keep != "" && time.Since(fi.ModTime()) > digestSettle {
		keepCached(keep, []byte(digest))
	}
	return digest, nil
}

// digestSettle is how long a file must have been left alone before its
// digest is kept.
const digestSettle = 2 * time.Second

// digestPath is where the digest of the file at path, as fi describes
// it, is kept, or "" when there is no cache directory.
func digestPath(path string, fi os.FileInfo) string {
	return cachePath("digests", path, fmt.Sprintf("%d\x00%d", fi.Size(), fi.ModTime().UnixNano()))
}
