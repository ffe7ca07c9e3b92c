package image

import (
	"context"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	dockerimage "github.com/docker/docker/api/types/image"

	"github.com/orchestro/orchestro/runtime/engine"
)

// Ensure makes sure the image ref is present locally: an image that is
// there is used as is (never re-pulled), otherwise it is pulled. The error
// of a failed pull says that the image is neither local nor pullable.
func Ensure(ctx context.Context, eng engine.Engine, ref string, progress io.Writer) error {
	progress = orDiscard(progress)
	exists, err := Exists(ctx, eng, ref)
	if err != nil {
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if exists {
		return nil
	}
	fmt.Fprintf(progress, "pulling %s\n", ref)
	body, err := eng.ImagePull(ctx, ref, dockerimage.PullOptions{})
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

// Exists reports whether the engine has an image by that reference.
func Exists(ctx context.Context, eng engine.Engine, ref string) (bool, error) {
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
