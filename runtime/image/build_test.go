package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStreamDecoderFailingBuild(t *testing.T) {
	stream := strings.Join([]string{
		`{"stream":"Step 1/3 : FROM alpine:3.20"}`,
		`{"stream":"\n"}`,
		`{"stream":" ---\u003e a24bb4013296\n"}`,
		`{"stream":"Step 2/3 : RUN make"}`,
		`{"stream":"\n"}`,
		`{"stream":" ---\u003e Running in 0ce1a2b3\n"}`,
		`{"stream":"cc -o app main.c\nmain.c:3:1: error: expected ';'"}`,
		`{"stream":" before '}' token\n"}`,
		`{"errorDetail":{"code":2,"message":"The command '/bin/sh -c make' returned a non-zero code: 2"},"error":"The command '/bin/sh -c make' returned a non-zero code: 2"}`,
		`{"stream":"never read\n"}`,
	}, "\n")
	var progress bytes.Buffer
	err := newStreamDecoder(&progress).decode(strings.NewReader(stream))

	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("decode error = %v, want a *BuildError", err)
	}
	want := &BuildError{
		Step:        "2/3",
		Instruction: "RUN make",
		Message:     "The command '/bin/sh -c make' returned a non-zero code: 2",
		Output:      []string{"cc -o app main.c", "main.c:3:1: error: expected ';' before '}' token"},
	}
	if diff := cmp.Diff(want, be); diff != "" {
		t.Errorf("BuildError mismatch (-want +got):\n%s", diff)
	}
	wantMsg := "step 2/3 (RUN make) failed: The command '/bin/sh -c make' returned a non-zero code: 2; last output:\n" +
		"    cc -o app main.c\n    main.c:3:1: error: expected ';' before '}' token"
	if diff := cmp.Diff(wantMsg, err.Error()); diff != "" {
		t.Errorf("error text mismatch (-want +got):\n%s", diff)
	}
	wantProgress := "Step 1/3 : FROM alpine:3.20\n ---> a24bb4013296\nStep 2/3 : RUN make\n ---> Running in 0ce1a2b3\n" +
		"cc -o app main.c\nmain.c:3:1: error: expected ';' before '}' token\n"
	if diff := cmp.Diff(wantProgress, progress.String()); diff != "" {
		t.Errorf("progress mismatch (-want +got):\n%s", diff)
	}
}

func TestStreamDecoderKeepsLastLines(t *testing.T) {
	var msgs []string
	msgs = append(msgs, `{"stream":"Step 1/1 : RUN ./noisy\n"}`)
	for i := 1; i <= 25; i++ {
		msgs = append(msgs, fmt.Sprintf(`{"stream":"line %d\n"}`, i))
	}
	msgs = append(msgs, `{"error":"boom"}`)
	err := newStreamDecoder(nil).decode(strings.NewReader(strings.Join(msgs, "")))
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("decode error = %v, want a *BuildError", err)
	}
	var want []string
	for i := 25 - tailLines + 1; i <= 25; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	if diff := cmp.Diff(want, be.Output); diff != "" {
		t.Errorf("Output mismatch (-want +got):\n%s", diff)
	}
}

func TestStreamDecoder(t *testing.T) {
	tests := []struct {
		name         string
		stream       string
		wantProgress string
		wantID       string
		wantErr      string
	}{
		{
			name: "success with image ID",
			stream: `{"stream":"Step 1/2 : FROM scratch\n"}{"stream":" ---\u003e \n"}{"stream":"Step 2/2 : COPY app /app\n"}` +
				`{"aux":{"ID":"sha256:0123456789abcdef"}}{"stream":"Successfully built 0123456789ab\n"}`,
			wantProgress: "Step 1/2 : FROM scratch\n ---> \nStep 2/2 : COPY app /app\nSuccessfully built 0123456789ab\n",
			wantID:       "sha256:0123456789abcdef",
		},
		{
			name:    "error before the first step",
			stream:  `{"errorDetail":{"message":"dockerfile parse error line 1: unknown instruction: FORM"},"error":"dockerfile parse error line 1: unknown instruction: FORM"}`,
			wantErr: "dockerfile parse error line 1: unknown instruction: FORM",
		},
		{
			name: "pull progress bars are dropped",
			stream: `{"status":"Pulling from library/alpine","id":"3.20"}{"status":"Downloading","progressDetail":{"current":1,"total":2},"progress":"[=====\u003e  ]","id":"abc"}` +
				`{"status":"Pull complete","progressDetail":{},"id":"abc"}{"status":"Status: Downloaded newer image for alpine:3.20"}`,
			wantProgress: "3.20: Pulling from library/alpine\nabc: Pull complete\nStatus: Downloaded newer image for alpine:3.20\n",
		},
		{
			name:         "unfinished last line is flushed",
			stream:       `{"stream":"no newline"}`,
			wantProgress: "no newline\n",
		},
		{
			name:         "truncated stream",
			stream:       `{"stream":"ok\n"}{"stream":`,
			wantProgress: "ok\n",
			wantErr:      "read engine output: unexpected EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var progress bytes.Buffer
			d := newStreamDecoder(&progress)
			err := d.decode(strings.NewReader(tt.stream))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantProgress, progress.String()); diff != "" {
				t.Errorf("progress mismatch (-want +got):\n%s", diff)
			}
			if d.imageID != tt.wantID {
				t.Errorf("image ID = %q, want %q", d.imageID, tt.wantID)
			}
		})
	}
}

func TestContentHash(t *testing.T) {
	base := goImageFiles([]byte("binary"), []byte("ca"))
	labels := map[string]string{"a": "1", "b": "2"}
	h := contentHash(base, labels)
	if len(h) != 12 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Fatalf("contentHash = %q, want 12 lower-case hex digits", h)
	}
	same := contentHash(goImageFiles([]byte("binary"), []byte("ca")), map[string]string{"b": "2", "a": "1"})
	if same != h {
		t.Errorf("equal inputs hash differently: %s and %s", h, same)
	}
	for name, other := range map[string]string{
		"binary":    contentHash(goImageFiles([]byte("binary2"), []byte("ca")), labels),
		"CA bundle": contentHash(goImageFiles([]byte("binary"), []byte("ca2")), labels),
		"no CA":     contentHash(goImageFiles([]byte("binary"), nil), labels),
		"labels":    contentHash(base, map[string]string{"a": "1"}),
	} {
		if other == h {
			t.Errorf("changing the %s does not change the hash", name)
		}
	}
}

func TestWriteContextTar(t *testing.T) {
	files := goImageFiles([]byte("\x7fELF..."), []byte("-----BEGIN CERTIFICATE-----"))
	var a, b bytes.Buffer
	if err := writeContextTar(&a, files); err != nil {
		t.Fatal(err)
	}
	if err := writeContextTar(&b, files); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same files give different tar streams")
	}
	got := map[string]string{}
	tr := tar.NewReader(&a)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got[fmt.Sprintf("%s %o", hdr.Name, hdr.Mode)] = string(data)
	}
	want := map[string]string{
		"Dockerfile 644":          "FROM scratch\nCOPY app /app\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nENTRYPOINT [\"/app\"]\n",
		"app 755":                 "\x7fELF...",
		"ca-certificates.crt 644": "-----BEGIN CERTIFICATE-----",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tar contents mismatch (-want +got):\n%s", diff)
	}
}
