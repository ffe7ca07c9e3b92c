package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"

	"golang.org/x/sync/errgroup"
)

// dockerfileHashVersion starts every Dockerfile content hash, so a change
// of what the hash covers gives new tags instead of matching old images.
const dockerfileHashVersion = "orchestro dockerfile build v1"

// contentHash identifies a Dockerfile build by what decides its image: the
// context exactly as the engine is sent it, and the build options. It
// covers, in this order,
//
//   - each entry of the context directory that contextEntries selects
//     (honouring .dockerignore), in lexical order: its slash-separated path,
//     its type and its mode bits as sent (tar.FileInfoHeader), and for a
//     file its size and the SHA-256 of its contents, for a symlink its
//     target;
//   - a Dockerfile from outside the context, by the name it is sent under
//     and its contents;
//   - the Dockerfile's name in the context, the build arguments sorted by
//     name, the target, the platform and the image labels.
//
// Modification times, owners and the context's location on this machine
// are left out: touching or moving a project does not rebuild it. It
// returns the first 12 hex digits, like a short image ID.
func (d *dockerfileBuild) contentHash(ctx context.Context) (string, error) {
	entries, err := contextEntries(d.root, d.pm)
	if err != nil {
		return "", fmt.Errorf("hash context %s: %w", d.root, err)
	}
	hdrs := make([]*tar.Header, 0, len(entries))
	for _, rel := range entries {
		hdr, err := contextHeader(d.root, rel)
		if err != nil {
			return "", fmt.Errorf("hash context %s: %w", d.root, err)
		}
		if hdr != nil {
			hdrs = append(hdrs, hdr)
		}
	}
	sums, err := hashFiles(ctx, d.root, hdrs)
	if err != nil {
		return "", fmt.Errorf("hash context %s: %w", d.root, err)
	}

	h := sha256.New()
	fmt.Fprintln(h, dockerfileHashVersion)
	for i, hdr := range hdrs {
		switch hdr.Typeflag {
		case tar.TypeDir:
			fmt.Fprintf(h, "dir %q %o\n", hdr.Name, hdr.Mode)
		case tar.TypeSymlink:
			fmt.Fprintf(h, "symlink %q %o %q\n", hdr.Name, hdr.Mode, hdr.Linkname)
		default:
			fmt.Fprintf(h, "file %q %o %d %x\n", hdr.Name, hdr.Mode, hdr.Size, sums[i])
		}
	}
	for _, f := range d.extra {
		fmt.Fprintf(h, "file %q %o %d %x\n", f.name, f.mode, len(f.data), sha256.Sum256(f.data))
	}
	o := d.opts
	fmt.Fprintf(h, "dockerfile %q\n", o.Dockerfile)
	for _, k := range slices.Sorted(maps.Keys(o.BuildArgs)) {
		if v := o.BuildArgs[k]; v != nil {
			fmt.Fprintf(h, "arg %q=%q\n", k, *v)
		} else {
			fmt.Fprintf(h, "arg %q\n", k)
		}
	}
	fmt.Fprintf(h, "target %q\n", o.Target)
	fmt.Fprintf(h, "platform %q\n", o.Platform)
	for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
		fmt.Fprintf(h, "label %q=%q\n", k, o.Labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// hashBufferSize is the read size of file hashing: large enough that big
// files stream at disk speed, small enough to keep one per worker.
const hashBufferSize = 256 << 10

// hashFiles returns the SHA-256 of each regular file among hdrs, by index
// (other entries get a zero sum). Files are streamed, never read whole, on
// as many workers as there are CPUs: a context of many small files is
// bound by opening them, a large file by hashing it.
func hashFiles(ctx context.Context, root string, hdrs []*tar.Header) ([][sha256.Size]byte, error) {
	sums := make([][sha256.Size]byte, len(hdrs))
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan int)
	g.Go(func() error {
		defer close(jobs)
		for i, hdr := range hdrs {
			if hdr.Typeflag != tar.TypeReg {
				continue
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range min(goruntime.GOMAXPROCS(0), len(hdrs)) {
		g.Go(func() error {
			buf := make([]byte, hashBufferSize)
			h := sha256.New()
			for i := range jobs {
				if err := ctx.Err(); err != nil {
					return err
				}
				h.Reset()
				if err := hashFile(h, filepath.Join(root, filepath.FromSlash(hdrs[i].Name)), hdrs[i].Size, buf); err != nil {
					return fmt.Errorf("hash %s: %w", hdrs[i].Name, err)
				}
				h.Sum(sums[i][:0])
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return sums, nil
}

// hashFile writes the first size bytes of the file at name into h, as
// many as the build context will carry.
func hashFile(h hash.Hash, name string, size int64, buf []byte) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	// Read through a LimitedReader so io.CopyBuffer uses buf (an
	// *os.File would hand the copy to WriterTo and its own buffer).
	n, err := io.CopyBuffer(h, &io.LimitedReader{R: f, N: size}, buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("the file shrank from %d to %d bytes while being read", size, n)
	}
	return nil
}
