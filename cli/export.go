package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/kube"
)

// ExportOptions are the inputs of `export kubernetes`.
type ExportOptions struct {
	IO        *IOStreams
	Dir       string
	Namespace string
	Registry  string
	ImageTag  string
	Push      bool
	Token     string
	global    *globalOptions
	f         *Factory
}

func newExportCmd(f *Factory, g *globalOptions) *cobra.Command {
	export := &cobra.Command{
		Use:   "export",
		Short: "Export the project for another platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("export what? `orchestro export kubernetes`")
		},
	}
	export.AddCommand(newExportKubernetesCmd(f, g, nil))
	return export
}

func newExportKubernetesCmd(f *Factory, g *globalOptions, runF func(context.Context, *ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "kubernetes",
		Short: "Print the project as Kubernetes manifests",
		Long: `Print the project as Kubernetes manifests: per service a Deployment and a
headless Service, per cell its gateway (Deployment, Service, ConfigMap,
PodDisruptionBudget, NetworkPolicies), PersistentVolumeClaims for named
volumes and HorizontalPodAutoscalers for autoscaled services. Output is one
multi-document YAML stream on stdout, or one file per cell with -o DIR.

Images are built (as up builds them) and named REGISTRY/<project>-<cell>-<service>:<content hash>;
--push pushes them there. With --image-tag nothing is built and every image
is named with that tag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Push && opts.Registry == "" {
				return usagef("--push needs --registry: where would the images go?")
			}
			if opts.Push && opts.ImageTag != "" {
				return usagef("--push builds and pushes the images; with --image-tag nothing is built")
			}
			if err := checkRegistry(opts.Registry); err != nil {
				return err
			}
			if opts.ImageTag != "" && !validTag(opts.ImageTag) {
				return usagef("--image-tag %q: a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", opts.ImageTag)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runExportKubernetes(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Dir, "output", "o", "", "write one file per cell (and one for the project's objects) into `DIR` instead of stdout")
	fl.StringVar(&opts.Namespace, "namespace", "", "put everything in this existing `namespace` (default: a namespace named after the project, which the output creates)")
	fl.StringVar(&opts.Registry, "registry", "", "name the built images in this registry (`HOST[:PORT][/PREFIX]`)")
	fl.StringVar(&opts.ImageTag, "image-tag", "", "build nothing and name every image with this `tag`")
	fl.BoolVar(&opts.Push, "push", false, "push the built images to --registry")
	fl.StringVar(&opts.Token, "token", "", "the gateways' admin `token` (default: a new random one, in a Secret of the output)")
	return cmd
}

// validTag reports whether s is a Docker image tag.
func validTag(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

func runExportKubernetes(ctx context.Context, opts *ExportOptions) error {
	p, err := loadProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	images, err := exportImages(ctx, opts, p)
	if err != nil {
		return err
	}
	token := opts.Token
	if token == "" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		token = hex.EncodeToString(b)
	}
	ex, err := kube.Manifests(p, kube.Options{Namespace: opts.Namespace, Images: images.Services, GatewayImage: images.Gateway, Token: token})
	if err != nil {
		return err
	}
	pal := opts.IO.Palette(opts.IO.ColorErr())
	for _, w := range ex.Warnings {
		fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", pal.Yellow("warning:"), w)
	}
	if opts.Dir == "" {
		out, err := ex.YAML()
		if err != nil {
			return err
		}
		_, err = opts.IO.Out.Write(out)
		return err
	}
	files, err := ex.Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(opts.Dir, f.Name)
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.ErrOut, "wrote %s\n", path)
	}
	return nil
}

// exportImages names the project's images: with --image-tag without
// building anything, otherwise by building them as up does (and pushing
// them with --push).
func exportImages(ctx context.Context, opts *ExportOptions, p *cellspec.Project) (api.ProjectImages, error) {
	if opts.ImageTag == "" {
		be, err := opts.f.Backend(ctx)
		if err != nil {
			return api.ProjectImages{}, err
		}
		pp := newProgressPrinter(opts.IO, opts.f.Now)
		defer pp.Close()
		return be.Images(ctx, p, api.ImageOptions{Registry: opts.Registry, Push: opts.Push, Progress: pp})
	}
	name := func(repo string) string {
		if opts.Registry != "" {
			repo = strings.TrimRight(opts.Registry, "/") + "/" + repo
		}
		return repo + ":" + opts.ImageTag
	}
	out := api.ProjectImages{Gateway: name("orchestro-gateway"), Services: map[string]map[string]string{}}
	for _, c := range p.Cells {
		out.Services[c.Name] = map[string]string{}
		for _, s := range c.ServiceNames() {
			svc := c.Services[s]
			if svc.Image != "" {
				out.Services[c.Name][s] = svc.Image
				continue
			}
			out.Services[c.Name][s] = name(kube.ServiceName(p.Name, c.Name, s))
		}
	}
	return out, nil
}
