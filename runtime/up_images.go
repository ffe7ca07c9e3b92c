package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/docker/docker/api/types/filters"
	dockerimage "github.com/docker/docker/api/types/image"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/image"
)

// buildImages builds or finds the gateway image and the image of every
// service, by cell and service name, reporting each as a progress step.
func (c *Client) buildImages(ctx context.Context, p *cellspec.Project, opts api.UpOptions, progress api.Progress) (string, map[string]map[string]api.ServiceImage, error) {
	// Everything at once: the gateway image (hashing the binary is most
	// of a no-op up's time) first, and every service, a few at a time.
	// The first failure stops the rest and is what Up reports.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(1 + buildLimit)
	var gwImage string
	g.Go(func() error {
		progress.Start("gateway-image", "gateway image")
		var err error
		gwImage, err = image.Gateway(gctx, c.eng, opts.GatewayImage, io.Discard)
		progress.Done("gateway-image", "gateway image "+gwImage, err)
		return err
	})
	type build struct {
		cell *cellspec.Cell
		svc  string
		img  api.ServiceImage
	}
	var builds []*build
	gocache := &image.GoBuildCache{}
	for _, cell := range p.Cells {
		for _, name := range cell.ServiceNames() {
			b := &build{cell: cell, svc: name}
			builds = append(builds, b)
			g.Go(func() error {
				var err error
				b.img, err = c.serviceImage(gctx, p.Name, cell, cell.Services[name], opts.Build, progress, gocache)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return "", nil, err
	}
	images := map[string]map[string]api.ServiceImage{}
	for _, cell := range p.Cells {
		images[cell.Name] = map[string]api.ServiceImage{}
	}
	for _, b := range builds {
		images[b.cell.Name][b.svc] = b.img
	}
	return gwImage, images, nil
}

// buildLimit bounds how many service images Up builds at once.
const buildLimit = 4

// serviceImage builds or finds the image of one service.
func (c *Client) serviceImage(ctx context.Context, project string, cell *cellspec.Cell, s *cellspec.Service, policy api.BuildPolicy, progress api.Progress, gocache *image.GoBuildCache) (api.ServiceImage, error) {
	what := cell.Name + "/" + s.Name
	labels := map[string]string{engine.LabelManaged: "true", engine.LabelProject: project, engine.LabelCell: cell.Name, engine.LabelService: s.Name}
	repo := project + "-" + cell.Name + "-" + s.Name
	var ref string
	switch {
	case s.Image != "":
		ref = s.Image
		progress.Start("image "+what, "image "+ref+" for "+what)
		err := image.Ensure(ctx, c.eng, ref, io.Discard)
		progress.Done("image "+what, "image "+ref+" for "+what, err)
		if err != nil {
			return api.ServiceImage{}, fmt.Errorf("service %s: %w", what, err)
		}
	case policy == api.BuildNever:
		r, err := c.latestImage(ctx, labels)
		if err != nil {
			return api.ServiceImage{}, fmt.Errorf("service %s: %w", what, err)
		}
		ref = r
	case s.Build.Go != "":
		progress.Start("build "+what, "build "+what+" (go)")
		r, err := gocache.BuildGo(ctx, c.eng, s.Build, repo, labels, io.Discard)
		progress.Done("build "+what, "build "+what+" → "+r, err)
		if err != nil {
			return api.ServiceImage{}, fmt.Errorf("build %s: %w", what, err)
		}
		ref = r
	default:
		progress.Start("build "+what, "build "+what+" (Dockerfile)")
		r, err := image.EnsureDockerfile(ctx, c.eng, s.Build, repo, labels, policy == api.BuildAlways, io.Discard)
		progress.Done("build "+what, "build "+what+" → "+r, err)
		if err != nil {
			return api.ServiceImage{}, fmt.Errorf("build %s: %w", what, err)
		}
		ref = r
	}
	ins, err := c.eng.ImageInspect(ctx, ref)
	if err != nil {
		return api.ServiceImage{}, fmt.Errorf("service %s: inspect image %s: %w", what, ref, err)
	}
	return api.ServiceImage{Ref: ref, ID: ins.ID}, nil
}

// latestImage finds the newest image built for a service (--no-build).
func (c *Client) latestImage(ctx context.Context, labels map[string]string) (string, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	list, err := c.eng.ImageList(ctx, dockerimage.ListOptions{Filters: args})
	if err != nil {
		return "", fmt.Errorf("list images: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created > list[j].Created })
	for _, img := range list {
		if len(img.RepoTags) > 0 {
			return img.RepoTags[0], nil
		}
	}
	return "", errors.New("no image was built yet and --no-build forbids building one")
}
