package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// writeResponse sends the replica's answer to the client. Responses of
// unknown length and event streams are flushed after every write, so
// streamed data arrives as soon as the replica sends it.
func (p *Proxy) writeResponse(w http.ResponseWriter, r *http.Request, sp *servicePool, a *attempt, rec *RequestRecord) {
	resp := a.resp
	h := w.Header()
	if conn := resp.Header[hdrConnection]; len(conn) > 0 {
		removeConnectionTokens(resp.Header, conn)
	}
	for k, vv := range resp.Header {
		if !isHopByHop(k) {
			h[k] = vv
		}
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	rec.Status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)

	var fl http.Flusher
	if resp.ContentLength < 0 || isEventStream(resp.Header) {
		fl = flusherOf(w)
		fl.Flush() // headers now: a stream may take a while to send its first byte
	}
	n, rerr, werr := p.copyBody(w, resp.Body, fl)
	rec.Bytes = n
	switch {
	case werr != nil:
		rec.Error = fmt.Sprintf("write to client: %v", werr)
	case rerr != nil && r.Context().Err() != nil:
		rec.Error = "client went away"
	case rerr != nil:
		// The replica broke off mid-body. Abort the client's response so
		// it cannot mistake the truncated body for a complete one.
		rec.Error = fmt.Sprintf("read from replica %s: %v", a.up, rerr)
		p.observeFailure(sp, a.up, failureGateway)
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

// copyBody copies a response body with a pooled buffer, calling flush (if
// not nil) after each write. It returns the bytes written and the read and
// write errors, io.EOF excluded.
func (p *Proxy) copyBody(w io.Writer, src io.Reader, flush http.Flusher) (written int64, rerr, werr error) {
	bufp := p.copyBufs.Get()
	defer p.copyBufs.Put(bufp)
	buf := *bufp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			m, err := w.Write(buf[:n])
			written += int64(m)
			if err == nil && m < n {
				err = io.ErrShortWrite
			}
			if err != nil {
				return written, nil, err
			}
			if flush != nil {
				flush.Flush()
			}
		}
		if err == io.EOF {
			return written, nil, nil
		}
		if err != nil {
			return written, err, nil
		}
	}
}

// flusherOf returns a flusher for w. A writer that hides its Flush behind
// Unwrap is reached through a ResponseController; one that cannot flush at
// all gets a flusher that does nothing. The wrapper holds one pointer, so
// making it an http.Flusher does not allocate.
func flusherOf(w http.ResponseWriter) http.Flusher {
	if f, ok := w.(http.Flusher); ok {
		return f
	}
	return controllerFlusher{http.NewResponseController(w)}
}

type controllerFlusher struct{ rc *http.ResponseController }

func (c controllerFlusher) Flush() { _ = c.rc.Flush() }

func isEventStream(h http.Header) bool {
	ct := firstValue(h, "Content-Type")
	return len(ct) >= len("text/event-stream") && strings.EqualFold(ct[:len("text/event-stream")], "text/event-stream")
}

// serveUpgrade completes a protocol switch (WebSocket and the like): it
// hijacks the client's connection, sends it the replica's 101 and copies
// bytes both ways until either side closes.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, resp *http.Response, upgrade string, rec *RequestRecord) {
	rec.Status = resp.StatusCode
	back, ok := resp.Body.(io.ReadWriteCloser)
	got := firstValue(resp.Header, hdrUpgrade)
	if !ok || upgrade == "" || !strings.EqualFold(got, upgrade) {
		_ = resp.Body.Close()
		p.reply(w, http.StatusBadGateway, fmt.Sprintf("replica switched to protocol %q, client asked for %q", got, upgrade), rec)
		return
	}
	defer back.Close()

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.reply(w, http.StatusInternalServerError, fmt.Sprintf("switch protocols: %v", err), rec)
		return
	}
	defer conn.Close()
	// The server's read and write deadlines belong to plain requests.
	_ = conn.SetDeadline(time.Time{})

	h := make(http.Header, len(resp.Header)+3)
	for k, vv := range resp.Header {
		if !isHopByHop(k) {
			h[k] = vv
		}
	}
	h[hdrConnection] = []string{"Upgrade"}
	h[hdrUpgrade] = []string{got}
	if id := w.Header()[hdrRequestID]; len(id) > 0 {
		h[hdrRequestID] = id
	}
	if err := writeSwitchingProtocols(brw.Writer, h); err != nil {
		rec.Error = fmt.Sprintf("write to client: %v", err)
		return
	}

	var toClient int64
	errc := make(chan error, 2)
	go func() {
		n, err := io.Copy(conn, back)
		toClient = n
		errc <- err
	}()
	go func() {
		// brw.Reader first: it may hold bytes the client sent right
		// after its request.
		_, err := io.Copy(back, brw.Reader)
		errc <- err
	}()
	<-errc
	// One side is done; closing both ends the other copy.
	_ = conn.Close()
	_ = back.Close()
	<-errc
	rec.Bytes = toClient
}

func writeSwitchingProtocols(bw *bufio.Writer, h http.Header) error {
	if _, err := bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return err
	}
	if err := h.Write(bw); err != nil {
		return err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	return bw.Flush()
}
