package runtime

import (
	"context"
	"fmt"
	"io"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/image"
)

// Images builds or finds the gateway image and every service's, as Up
// does, and names the built ones in opts.Registry by their content-hash
// tags (REGISTRY/<project>-<cell>-<service>:<hash>), pushing them there
// with opts.Push. An image a service names with `image:` is left as it is.
func (c *Client) Images(ctx context.Context, p *cellspec.Project, opts api.ImageOptions) (api.ProjectImages, error) {
	progress := opts.Progress
	if progress == nil {
		progress = api.Discard{}
	}
	var reg image.Registry
	if opts.Registry != "" {
		r, err := image.ParseRegistry(opts.Registry)
		if err != nil {
			return api.ProjectImages{}, err
		}
		reg = r
	}
	gw, images, err := c.buildImages(ctx, p, api.UpOptions{Build: opts.Build, GatewayImage: opts.GatewayImage}, progress)
	if err != nil {
		return api.ProjectImages{}, err
	}
	pusher, _ := c.eng.(image.Pusher)
	name := func(ref string, built bool) (string, error) {
		if opts.Registry == "" || !built {
			return ref, nil
		}
		if !opts.Push {
			return reg.Repository(ref), nil
		}
		if pusher == nil {
			return "", fmt.Errorf("push %s: this engine connection cannot push images", ref)
		}
		progress.Start("push "+ref, "push "+ref)
		_, err := image.Push(ctx, pusher, ref, opts.Registry, io.Discard)
		progress.Done("push "+ref, "push "+ref, err)
		return reg.Repository(ref), err
	}
	out := api.ProjectImages{Services: map[string]map[string]string{}}
	if out.Gateway, err = name(gw, opts.GatewayImage == ""); err != nil {
		return api.ProjectImages{}, err
	}
	for _, cell := range p.Cells {
		out.Services[cell.Name] = map[string]string{}
		for _, svc := range cell.ServiceNames() {
			s := cell.Services[svc]
			ref := images[cell.Name][svc].Ref
			if ref == "" {
				ref = s.Image
			}
			if out.Services[cell.Name][svc], err = name(ref, s.Image == ""); err != nil {
				return api.ProjectImages{}, fmt.Errorf("service %s/%s: %w", cell.Name, svc, err)
			}
		}
	}
	return out, nil
}
