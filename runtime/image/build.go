package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"

	"github.com/orchestro/orchestro/runtime/engine"
)

// contextFile is one file of a build context held in memory. Go images and
// the gateway image are built from such tiny contexts: a Dockerfile and a
// binary or two.
type contextFile struct {
	name string
	mode int64
	data []byte
}

// writeContextTar writes files as a tar stream. Owners and times are fixed,
// so the same files always give the same bytes.
func writeContextTar(w io.Writer, files []contextFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.name,
			Mode:     f.mode,
			Size:     int64(len(f.data)),
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s to build context: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("write %s to build context: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("close build context: %w", err)
	}
	return nil
}

// contentHash identifies an in-memory build context and the labels its image
// gets: equal hashes mean an identical image, so the build can be skipped.
// It returns the first 12 hex digits, like a short image ID.
func contentHash(files []contextFile, labels map[string]string) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "file %q %o %d\n", f.name, f.mode, len(f.data))
		h.Write(f.data)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(h, "label %q=%q\n", k, labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// buildFilesIfMissing builds tag from an in-memory context unless an image
// with that tag already exists. The tag carries the content hash, so an
// existing tag means an identical image.
func buildFilesIfMissing(ctx context.Context, eng engine.Engine, tag string, files []contextFile, labels map[string]string, progress io.Writer) error {
	progress = orDiscard(progress)
	exists, err := Exists(ctx, eng, tag)
	if err != nil {
		return fmt.Errorf("inspect image %s: %w", tag, err)
	}
	if exists {
		fmt.Fprintf(progress, "image %s is up to date\n", tag)
		return nil
	}
	if img, ok := asScratchImage(files); ok {
		_, goarch, err := engine.Platform(ctx, eng)
		if err != nil {
			return fmt.Errorf("load image %s: %w", tag, err)
		}
		if err := loadImage(ctx, eng, tag, img, labels, goarch); err != nil {
			return err
		}
		fmt.Fprintf(progress, "image %s loaded\n", tag)
		return nil
	}
	var buf bytes.Buffer
	if err := writeContextTar(&buf, files); err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	opts := build.ImageBuildOptions{
		Tags:       []string{tag},
		Dockerfile: "Dockerfile",
		Labels:     labels,
	}
	_, err = runBuild(ctx, eng, &buf, opts, progress)
	return err
}

// runBuild sends a build context to the engine and follows the build to its
// end. Every image orchestro builds is labelled as managed. It returns the
// new image's ID when the engine reports it.
func runBuild(ctx context.Context, eng engine.Engine, buildContext io.Reader, opts build.ImageBuildOptions, progress io.Writer) (string, error) {
	name := "(untagged)"
	if len(opts.Tags) > 0 {
		name = opts.Tags[0]
	}
	labels := make(map[string]string, len(opts.Labels)+1)
	maps.Copy(labels, opts.Labels)
	labels[engine.LabelManaged] = "true"
	opts.Labels = labels
	// The classic builder's message stream is plain text lines; BuildKit's
	// needs a session and protobuf decoding. Neither FROM scratch images nor
	// ordinary Dockerfiles need BuildKit here.
	opts.Version = build.BuilderV1
	opts.Remove = true
	opts.ForceRemove = true

	resp, err := eng.ImageBuild(ctx, buildContext, opts)
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	defer resp.Body.Close()
	d := newStreamDecoder(progress)
	if err := d.decode(resp.Body); err != nil {
		return "", fmt.Errorf("build image %s: %w", name, err)
	}
	return d.imageID, nil
}

// BuildError is a failed image build as the engine reported it: the step
// that failed, the engine's message and the last lines the step printed.
type BuildError struct {
	// Step is the step number, such as "2/5"; empty when the build failed
	// before its first step (a Dockerfile syntax error, for example).
	Step string
	// Instruction is the failing Dockerfile instruction, such as "RUN make".
	Instruction string
	// Message is the engine's error message.
	Message string
	// Output holds the last lines the failing step printed.
	Output []string
}

// Error reads "step 2/5 (RUN make) failed: <message>" followed by the last
// lines of the step's output, indented.
func (e *BuildError) Error() string {
	var b strings.Builder
	if e.Step != "" {
		fmt.Fprintf(&b, "step %s (%s) failed: ", e.Step, e.Instruction)
	}
	b.WriteString(e.Message)
	if len(e.Output) > 0 {
		b.WriteString("; last output:")
		for _, l := range e.Output {
			b.WriteString("\n    ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// jsonMessage is one message of the engine's build or pull stream.
type jsonMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Progress    string `json:"progress"`
	ID          string `json:"id"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// tailLines is how many lines of a failing step's output an error keeps.
const tailLines = 10

// streamDecoder turns the engine's JSON message stream into progress lines
// and, when the stream reports an error, a *BuildError.
type streamDecoder struct {
	out         io.Writer
	pull        bool // a pull stream: errors are plain, not build steps
	partial     string
	step        string
	instruction string
	tail        []string
	imageID     string
}

func newStreamDecoder(out io.Writer) *streamDecoder {
	return &streamDecoder{out: orDiscard(out)}
}

// decode reads the stream to its end. Progress writes are best effort: a
// failing progress writer must not fail the build.
func (d *streamDecoder) decode(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				d.flush()
				return nil
			}
			d.flush()
			return fmt.Errorf("read engine output: %w", err)
		}
		if m.Error != "" || m.ErrorDetail != nil {
			d.flush()
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			if d.pull {
				return errors.New(strings.TrimSpace(msg))
			}
			return &BuildError{
				Step:        d.step,
				Instruction: d.instruction,
				Message:     strings.TrimSpace(msg),
				Output:      slices.Clone(d.tail),
			}
		}
		switch {
		case m.Stream != "":
			d.text(m.Stream)
		case m.Status != "" && m.Progress == "":
			// Progress bars (downloads, extraction) are noise in a log;
			// status changes are kept.
			if m.ID != "" {
				d.line(m.ID + ": " + m.Status)
			} else {
				d.line(m.Status)
			}
		case len(m.Aux) > 0:
			var aux struct {
				ID string `json:"ID"`
			}
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				d.imageID = aux.ID
			}
		}
	}
}

// text splits stream text into lines; a message may hold part of a line or
// several lines.
func (d *streamDecoder) text(s string) {
	s = d.partial + s
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		d.line(strings.TrimRight(s[:i], "\r"))
		s = s[i+1:]
	}
	d.partial = s
}

func (d *streamDecoder) flush() {
	if d.partial != "" {
		d.line(d.partial)
		d.partial = ""
	}
}

// line writes one output line and tracks the current step and its output.
func (d *streamDecoder) line(l string) {
	fmt.Fprintln(d.out, l)
	if rest, ok := strings.CutPrefix(l, "Step "); ok {
		if num, instr, ok := strings.Cut(rest, " : "); ok {
			d.step, d.instruction = strings.TrimSpace(num), strings.TrimSpace(instr)
			d.tail = d.tail[:0]
			return
		}
	}
	// The classic builder's own bookkeeping says nothing about a failure.
	if strings.HasPrefix(l, " ---> ") || strings.HasPrefix(l, "Removing intermediate container") {
		return
	}
	if strings.TrimSpace(l) == "" {
		return
	}
	d.tail = append(d.tail, l)
	if len(d.tail) > tailLines {
		d.tail = slices.Delete(d.tail, 0, len(d.tail)-tailLines)
	}
}

// orDiscard lets callers pass a nil progress writer.
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
