package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// newTestClient starts a Server over cell and bus on a real socket and
// returns a client of it for cell "shop".
func newTestClient(t *testing.T, cell Cell, bus *EventBus, token string) *Client {
	t.Helper()
	ts := httptest.NewServer(newTestServer(cell, bus))
	t.Cleanup(ts.Close)
	c := NewClient(ts.URL+"/", token, ts.Client())
	c.Cell = "shop"
	return c
}

func TestClientRoundTrips(t *testing.T) {
	cell := &fakeCell{status: testStatus()}
	c := newTestClient(t, cell, NewEventBus(10), testToken)
	ctx := t.Context()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if diff := cmp.Diff(testStatus(), st); diff != "" {
		t.Errorf("Status mismatch (-want +got):\n%s", diff)
	}
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"Scale", func() error { return c.Scale(ctx, "orders", 3) }},
		{"Scale to zero", func() error { return c.Scale(ctx, "orders", 0) }},
		{"Restart one", func() error { return c.Restart(ctx, "orders") }},
		{"Restart all", func() error { return c.Restart(ctx, "") }},
		{"UpdateSpec", func() error { return c.UpdateSpec(ctx, []byte(`{"cell":"shop"}`)) }},
		{"Stop", func() error { return c.Stop(ctx) }},
	} {
		if err := call.do(); err != nil {
			t.Errorf("%s: %v", call.name, err)
		}
	}
	want := []string{"scale orders 3", "scale orders 0", `restart "orders"`, `restart ""`, `spec {"cell":"shop"}`, "stop"}
	if diff := cmp.Diff(want, cell.Calls()); diff != "" {
		t.Errorf("cell calls mismatch (-want +got):\n%s", diff)
	}
}

// TestClientMisdirected: a gateway of another cell found at the address
// (a port the engine has handed to another gateway since it was read)
// neither acts nor answers for the cell the client means.
func TestClientMisdirected(t *testing.T) {
	cell := &fakeCell{status: testStatus()}
	c := newTestClient(t, cell, NewEventBus(10), testToken)
	c.Cell = "users"
	ctx := t.Context()
	const why = "this is the gateway of cell shop, not of cell users"
	if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "421: "+why) {
		t.Errorf("status from another cell's gateway: %v, want 421: %s", err, why)
	}
	err := c.Scale(ctx, "orders", 3)
	if want := "scale users/orders: 421: " + why; err == nil || err.Error() != want {
		t.Errorf("scale through another cell's gateway: %v, want %q", err, want)
	}
	if calls := cell.Calls(); len(calls) != 0 {
		t.Errorf("the gateway of shop acted for users: %q", calls)
	}
	// A client that names no cell reaches whatever answers, as before.
	c.Cell = ""
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("status without a cell named: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name     string
		cellErr  error
		token    string
		cellName string
		call     func(ctx context.Context, c *Client) error
		wantCode int
		want     string
	}{
		{
			name:    "scale outside the bounds",
			cellErr: BadRequest(errors.New("replicas 9 is outside the autoscale bounds 1-4")),
			token:   testToken, cellName: "shop",
			call:     func(ctx context.Context, c *Client) error { return c.Scale(ctx, "orders", 9) },
			wantCode: http.StatusBadRequest,
			want:     "scale shop/orders: 400: replicas 9 is outside the autoscale bounds 1-4",
		},
		{
			name:     "scale without a cell name",
			cellErr:  BadRequest(errors.New("replicas 9 is outside the autoscale bounds 1-4")),
			token:    testToken,
			call:     func(ctx context.Context, c *Client) error { return c.Scale(ctx, "orders", 9) },
			wantCode: http.StatusBadRequest,
			want:     "scale orders: 400: replicas 9 is outside the autoscale bounds 1-4",
		},
		{
			name:    "restart unknown service",
			cellErr: NotFound(errors.New(`no service "nope" in cell shop`)),
			token:   testToken, cellName: "shop",
			call:     func(ctx context.Context, c *Client) error { return c.Restart(ctx, "nope") },
			wantCode: http.StatusNotFound,
			want:     `restart shop/nope: 404: no service "nope" in cell shop`,
		},
		{
			name:    "restart all fails",
			cellErr: errors.New("inspect replicas: engine gone"),
			token:   testToken, cellName: "shop",
			call:     func(ctx context.Context, c *Client) error { return c.Restart(ctx, "") },
			wantCode: http.StatusInternalServerError,
			want:     "restart shop: 500: inspect replicas: engine gone",
		},
		{
			name:    "invalid spec",
			cellErr: BadRequest(errors.New("services.orders.port: must be between 1 and 65535")),
			token:   testToken, cellName: "shop",
			call:     func(ctx context.Context, c *Client) error { return c.UpdateSpec(ctx, []byte(`{}`)) },
			wantCode: http.StatusBadRequest,
			want:     "update spec of shop: 400: services.orders.port: must be between 1 and 65535",
		},
		{
			name:  "spec not JSON",
			token: testToken, cellName: "shop",
			call:     func(ctx context.Context, c *Client) error { return c.UpdateSpec(ctx, []byte(`cell: shop`)) },
			wantCode: http.StatusBadRequest,
			want:     "update spec of shop: 400: request body is not valid JSON: expected the cell spec as JSON",
		},
		{
			name:  "wrong token",
			token: "nope", cellName: "shop",
			call:     func(ctx context.Context, c *Client) error { return c.Stop(ctx) },
			wantCode: http.StatusUnauthorized,
			want:     "stop shop: 401: invalid token",
		},
		{
			name:  "no token",
			token: "", cellName: "shop",
			call:     func(ctx context.Context, c *Client) error { return c.Scale(ctx, "orders", 1) },
			wantCode: http.StatusUnauthorized,
			want:     "scale shop/orders: 401: missing bearer token: this call needs the project token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, &fakeCell{err: tt.cellErr}, NewEventBus(10), tt.token)
			c.Cell = tt.cellName
			err := tt.call(t.Context(), c)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.wantCode {
				t.Errorf("error carries no *StatusError with code %d: %#v", tt.wantCode, err)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Error("an answer from the gateway matches ErrUnreachable")
			}
		})
	}
}

func TestClientUnreachable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens at url any more

	c := NewClient(url, testToken, nil)
	c.Cell = "shop"
	calls := []struct {
		op string
		do func(ctx context.Context) error
	}{
		{"get status of shop", func(ctx context.Context) error { _, err := c.Status(ctx); return err }},
		{"scale shop/orders", func(ctx context.Context) error { return c.Scale(ctx, "orders", 2) }},
		{"read events of shop", func(ctx context.Context) error { return c.Events(ctx, true, func(api.Event) {}) }},
	}
	for _, call := range calls {
		err := call.do(t.Context())
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("%s: error %v does not match ErrUnreachable", call.op, err)
		}
		if want := call.op + ": gateway is not reachable at " + url + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error = %q, want it to start with %q", err, want)
		}
	}
}

func TestClientNonJSONErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{
			name: "plain text",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "upstream exploded", http.StatusBadGateway)
			},
			want: "get status of shop: 502: upstream exploded",
		},
		{
			name: "html page",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, "<html>\n<body>down</body>\n</html>\n")
			},
			want: "get status of shop: 503: service unavailable",
		},
		{
			name: "no body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
			},
			want: "get status of shop: 403: forbidden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(tt.handler)
			defer ts.Close()
			c := NewClient(ts.URL, "", ts.Client())
			c.Cell = "shop"
			_, err := c.Status(t.Context())
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestClientBadStatusBody(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "not json")
	}))
	defer ts.Close()
	_, err := NewClient(ts.URL, "", ts.Client()).Status(t.Context())
	if want := "get status: decode answer: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v, want it to start with %q", err, want)
	}
}

func TestClientEventsBacklog(t *testing.T) {
	bus := NewEventBus(10)
	for n := 1; n <= 3; n++ {
		bus.Publish(testEvent(n))
	}
	c := newTestClient(t, &fakeCell{}, bus, "")
	var got []api.Event
	if err := c.Events(t.Context(), false, func(e api.Event) { got = append(got, e) }); err != nil {
		t.Fatalf("Events: %v", err)
	}
	if diff := cmp.Diff(events(1, 3), got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
}

func TestClientEventsToleratesNewFields(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"cell":"shop","type":"started","message":"m","node":"later"}`+"\n\n")
	}))
	defer ts.Close()
	var got []api.Event
	err := NewClient(ts.URL, "", ts.Client()).Events(t.Context(), false, func(e api.Event) { got = append(got, e) })
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	want := []api.Event{{Cell: "shop", Type: api.EventStarted, Message: "m"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
}

func TestClientEventsBadLine(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "{\"cell\":\"shop\"}\nnot json\n")
	}))
	defer ts.Close()
	c := NewClient(ts.URL, "", ts.Client())
	c.Cell = "shop"
	calls := 0
	err := c.Events(t.Context(), false, func(api.Event) { calls++ })
	if want := "read events of shop: decode event: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v, want it to start with %q", err, want)
	}
	if calls != 1 {
		t.Errorf("fn called %d times, want 1", calls)
	}
}

// TestClientEventsFollow runs client, server and bus in one synctest
// bubble over an in-memory transport: the backlog and live events
// arrive in order, cancelling the context ends Events with
// context.Canceled, and the bubble's end proves no goroutine is left.
func TestClientEventsFollow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := NewEventBus(10)
		bus.Publish(testEvent(1))
		bus.Publish(testEvent(2))
		c := NewClient("http://gateway.test", testToken,
			&http.Client{Transport: pipeTransport{newTestServer(&fakeCell{}, bus)}})
		c.Cell = "shop"

		ctx, cancel := context.WithCancel(t.Context())
		got := make(chan api.Event, 10)
		done := make(chan error)
		go func() { done <- c.Events(ctx, true, func(e api.Event) { got <- e }) }()

		synctest.Wait()
		if diff := cmp.Diff(events(1, 2), drainEvents(got)); diff != "" {
			t.Errorf("backlog mismatch (-want +got):\n%s", diff)
		}
		if n := bus.subscribers(); n != 1 {
			t.Errorf("%d subscribers while following, want 1", n)
		}
		bus.Publish(testEvent(3))
		synctest.Wait()
		if diff := cmp.Diff(events(3, 3), drainEvents(got)); diff != "" {
			t.Errorf("live event mismatch (-want +got):\n%s", diff)
		}

		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Events after cancel = %v, want context.Canceled", err)
		}
		if want := "read events of shop: context canceled"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
		synctest.Wait()
		if n := bus.subscribers(); n != 0 {
			t.Errorf("%d subscribers after cancel, want 0", n)
		}
	})
}

// TestClientEventsFollowServerEnds shows that a stream the gateway ends
// (here by closing its bus) returns nil.
func TestClientEventsFollowServerEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := NewEventBus(10)
		c := NewClient("http://gateway.test", "", &http.Client{Transport: pipeTransport{newTestServer(&fakeCell{}, bus)}})
		var got []api.Event
		done := make(chan error)
		go func() { done <- c.Events(t.Context(), true, func(e api.Event) { got = append(got, e) }) }()
		synctest.Wait()
		bus.Publish(testEvent(1))
		synctest.Wait()
		bus.Close()
		if err := <-done; err != nil {
			t.Errorf("Events = %v, want nil when the gateway ends the stream", err)
		}
		if diff := cmp.Diff(events(1, 1), got); diff != "" {
			t.Errorf("events mismatch (-want +got):\n%s", diff)
		}
	})
}

// drainEvents returns what ch holds without waiting.
func drainEvents(ch <-chan api.Event) []api.Event {
	var out []api.Event
	for {
		select {
		case e := <-ch:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestClientOpNames(t *testing.T) {
	tests := []struct {
		cell, verb, service, want string
	}{
		{"shop", "scale", "orders", "scale shop/orders"},
		{"", "scale", "orders", "scale orders"},
		{"shop", "restart", "", "restart shop"},
		{"", "restart", "", "restart"},
		{"shop", "get status of", "", "get status of shop"},
		{"", "get status of", "", "get status"},
	}
	for _, tt := range tests {
		c := &Client{Cell: tt.cell}
		if got := c.op(tt.verb, tt.service); got != tt.want {
			t.Errorf("op(%q, %q) with cell %q = %q, want %q", tt.verb, tt.service, tt.cell, got, tt.want)
		}
	}
}

func ExampleClient_Scale() {
	// A gateway whose controller refuses replica counts outside the
	// autoscale bounds.
	srv, _ := NewServer(ServerConfig{
		Cell:   &boundedCell{min: 1, max: 4},
		Events: NewEventBus(0),
		Token:  "t0ken",
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()

	c := NewClient(ts.URL, "t0ken", nil)
	c.Cell = "shop"
	err := c.Scale(context.Background(), "orders", 9)
	fmt.Println(err)
	var se *StatusError
	fmt.Println(errors.As(err, &se) && se.Code == http.StatusBadRequest)
	// Output:
	// scale shop/orders: 400: replicas 9 is outside the autoscale bounds 1-4
	// true
}

// boundedCell is a Cell whose Scale enforces autoscale bounds.
type boundedCell struct {
	fakeCell
	min, max int
}

func (b *boundedCell) Scale(ctx context.Context, service string, replicas int) error {
	if replicas < b.min || replicas > b.max {
		return BadRequest(fmt.Errorf("replicas %d is outside the autoscale bounds %d-%d", replicas, b.min, b.max))
	}
	return nil
}

func TestClientNoAnswer(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close() // hang up without an answer
	}))
	defer ts.Close()
	c := NewClient(ts.URL, "", ts.Client())
	c.Cell = "shop"
	_, err := c.Status(t.Context())
	if want := "get status of shop: gateway at " + ts.URL + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v, want it to start with %q", err, want)
	}
	if errors.Is(err, ErrUnreachable) {
		t.Error("a gateway that accepted the connection matches ErrUnreachable")
	}
}

func TestClientCancelled(t *testing.T) {
	c := newTestClient(t, &fakeCell{}, NewEventBus(1), testToken)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := c.Scale(ctx, "orders", 1)
	if want := "scale shop/orders: context canceled"; err == nil || err.Error() != want || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want %q matching context.Canceled", err, want)
	}
}
