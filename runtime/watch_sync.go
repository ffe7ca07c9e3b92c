package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/orchestro/orchestro/runtime/engine"
)

// Syncing files into replicas.

// containerCopier is the engine call sync needs beyond engine.Engine.
type containerCopier interface {
	CopyToContainer(ctx context.Context, containerID, dstPath string, content io.Reader, options container.CopyToContainerOptions) error
}

// syncFiles copies files into every running replica of a service, and
// removes from them the files that no longer exist on the host. It
// returns how many replicas it reached. Replicas created later start from
// the image, without these files: sync suits servers that reload files,
// while a rebuild is what every future replica sees.
func (c *Client) syncFiles(ctx context.Context, project, cell, service string, files []syncFile) (int, error) {
	cp, ok := c.eng.(containerCopier)
	if !ok {
		return 0, errors.New("this engine cannot copy files into containers")
	}
	list, err := c.eng.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelCell+"="+cell),
		filters.Arg("label", engine.LabelService+"="+service),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleReplica),
		filters.Arg("status", "running"),
	)})
	if err != nil {
		return 0, fmt.Errorf("list replicas of %s/%s: %w", cell, service, err)
	}
	archive, deleted, err := syncArchive(files)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, ctr := range list {
		name := engine.ContainerName(ctr.Names)
		if len(archive) > 0 {
			if err := cp.CopyToContainer(ctx, ctr.ID, "/", bytes.NewReader(archive), container.CopyToContainerOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("copy into %s: %w", name, err))
				continue
			}
		}
		if len(deleted) > 0 {
			if err := c.removeFiles(ctx, ctr.ID, deleted); err != nil {
				errs = append(errs, fmt.Errorf("remove %s from %s: %w", strings.Join(deleted, ", "), name, err))
			}
		}
	}
	return len(list), errors.Join(errs...)
}

// syncArchive packs the files that exist as a tar stream rooted at /, and
// lists the container paths of those that do not.
func syncArchive(files []syncFile) ([]byte, []string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var deleted []string
	n := 0
	for _, f := range files {
		fi, err := os.Lstat(f.host)
		if errors.Is(err, fs.ErrNotExist) {
			deleted = append(deleted, f.container)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("sync %s: %w", f.host, err)
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(f.host)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil, nil, fmt.Errorf("sync %s: %w", f.host, err)
		}
		hdr.Name = strings.TrimPrefix(f.container, "/")
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, nil, err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(f.host)
			if err != nil {
				return nil, nil, fmt.Errorf("sync %s: %w", f.host, err)
			}
			if int64(len(data)) != hdr.Size {
				return nil, nil, fmt.Errorf("sync %s: it changed while being read", f.host)
			}
			if _, err := tw.Write(data); err != nil {
				return nil, nil, err
			}
		}
		n++
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, deleted, nil
	}
	return buf.Bytes(), deleted, nil
}

// removeFiles runs rm in a container; an image without rm cannot have
// files removed.
func (c *Client) removeFiles(ctx context.Context, id string, paths []string) error {
	ex, err := c.eng.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: append([]string{"rm", "-rf", "--"}, paths...)})
	if err != nil {
		return err
	}
	if err := c.eng.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{}); err != nil {
		return err
	}
	for range 50 {
		ins, err := c.eng.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			return err
		}
		if !ins.Running {
			if ins.ExitCode != 0 {
				return fmt.Errorf("rm exited %d", ins.ExitCode)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("rm did not finish within a second")
}
