package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    wrkResult
		wantErr bool
	}{
		{
			name: "clean run",
			out: `Running 5s test @ http://127.0.0.1:40000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.51ms    1.02ms  30.20ms   86.51%
    Req/Sec    21.74k     1.90k   25.83k    69.00%
  Latency Distribution
     50%  635.00us
     75%    1.06ms
     90%    2.09ms
     99%    6.10ms
  216336 requests in 5.00s, 31.98MB read
Requests/sec:  43253.14
Transfer/sec:      6.39MB
`,
			want: wrkResult{RPS: 43253.14, P50: 635 * time.Microsecond, P99: 6100 * time.Microsecond, Requests: 216336},
		},
		{
			name: "errors",
			out: `Running 1s test @ http://127.0.0.1:18777/nonexistent
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.66ms   17.51ms 105.57ms   87.73%
    Req/Sec   715.73    587.39     2.05k    63.64%
  Latency Distribution
     50%    1.25ms
     75%    9.52ms
     90%   32.12ms
     99%    1.20s
  785 requests in 1.11s, 398.63KB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 785
Requests/sec:    710.07
Transfer/sec:    360.58KB
`,
			want: wrkResult{RPS: 710.07, P50: 1250 * time.Microsecond, P99: 1200 * time.Millisecond, Requests: 785, SocketErrors: 7, Non2xx: 785},
		},
		{
			name:    "without --latency",
			out:     "  785 requests in 1.11s, 398.63KB read\nRequests/sec:    710.07\n",
			wantErr: true,
		},
		{
			name:    "unknown unit",
			out:     "  Latency Distribution\n     50%    1.25xs\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseWrk() error = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseWrk() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := map[string]time.Duration{
		"635.00us": 635 * time.Microsecond,
		"1.06ms":   1060 * time.Microsecond,
		"2.00s":    2 * time.Second,
		"1.50m":    90 * time.Second,
		"1.00h":    time.Hour,
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			got, err := parseWrkDuration(in)
			if err != nil {
				t.Fatal(err)
			}
			// Float parsing may be off by a nanosecond.
			if diff := got - want; diff < -time.Nanosecond || diff > time.Nanosecond {
				t.Errorf("parseWrkDuration(%q) = %v, want %v", in, got, want)
			}
		})
	}
}
