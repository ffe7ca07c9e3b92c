package runtime

import (
	"context"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
)

// EnsureImage makes sure the image ref is present locally: an image that is
// there is used as is (never re-pulled), otherwise it is pulled. The error
// of a failed pull says that the image is neither local nor pullable.
func EnsureImage(ctx context.Context, eng Engine, ref string, progress io.Writer) error {
	progress = orDiscard(progress)
	exists, err := imageExists(ctx, eng, ref)
	if err != nil {
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if exists {
		return nil
	}
	fmt.Fprintf(progress, "pulling %s\n", ref)
	body, err := eng.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("image %s is not present locally and could not be pulled: %w", ref, err)
	}
	defer body.Close()
	d := newStreamDecoder(progress)
	d.pull = true
	if err := d.decode(body); err != nil {
		return fmt.Errorf("image %s is not present locally and could not be pulled: %w", ref, err)
	}
	return nil
}

// imageExists reports whether the engine has an image by that reference.
func imageExists(ctx context.Context, eng Engine, ref string) (bool, error) {
	_, err := eng.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, err
	}
}
