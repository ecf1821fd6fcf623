package throttle

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want float64
		err  string
	}{
		{in: "20/s", want: 20},
		{in: "20", want: 20},
		{in: "0.5/s", want: 0.5},
		{in: "1200/m", want: 20},
		{in: "3600/h", want: 1},
		{in: " 7 / sec ", want: 7},
		{in: "0/s", err: "want N/s"},
		{in: "-3/s", err: "want N/s"},
		{in: "fast", err: "want N/s"},
		{in: "20/d", err: `unknown unit "d"`},
	} {
		got, err := ParseRequests(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRequests(%q) = %v, %v: want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRequests(%q) = %v, %v: want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseBandwidth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want float64
		err  string
	}{
		{in: "50MiB/s", want: 50 << 20},
		{in: "50mib/s", want: 50 << 20},
		{in: "50MiB", want: 50 << 20},
		{in: "100Mbit/s", want: 100e6 / 8},
		{in: "1Gbit/s", want: 1e9 / 8},
		{in: "2GB/s", want: 2e9},
		{in: "500KiB/s", want: 500 << 10},
		{in: "1.5MB/s", want: 1.5e6},
		{in: "60MiB/m", want: 1 << 20},
		{in: "4096B/s", want: 4096},
		{in: "4096/s", want: 4096},
		{in: "4096", err: "say the unit"},
		{in: "10B/s", err: "at least 1KiB/s"},
		{in: "50MiBps", err: `unknown unit "MiBps"`},
		{in: "50XB/s", err: `unknown unit "XB"`},
		{in: "MiB/s", err: "want a rate in bytes"},
		{in: "50MiB/fortnight", err: `unknown unit "fortnight"`},
	} {
		got, err := ParseBandwidth(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseBandwidth(%q) = %v, %v: want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseBandwidth(%q) = %v, %v: want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatReadsBack(t *testing.T) {
	t.Parallel()
	for _, b := range []float64{50 << 20, 12.5 * (1 << 20), 3 << 30, 2048, 1500} {
		s := FormatBandwidth(b)
		got, err := ParseBandwidth(s)
		if err != nil || got < b*0.999 || got > b*1.001 { // three decimals of the unit

			t.Errorf("FormatBandwidth(%v) = %q, read back as %v, %v", b, s, got, err)
		}
	}
	for _, r := range []float64{20, 0.5, 6.25} {
		s := FormatRequests(r)
		got, err := ParseRequests(s)
		if err != nil || got != r {
			t.Errorf("FormatRequests(%v) = %q, read back as %v, %v", r, s, got, err)
		}
	}
}

func TestDivideGivesEachPodItsShare(t *testing.T) {
	t.Parallel()
	l := Limits{Requests: 40, Bytes: 100 << 20}
	if got := l.Divide(4); got.Requests != 10 || got.Bytes != 25<<20 {
		t.Errorf("Divide(4) = %+v, want 10/s and 25MiB/s", got)
	}
	if got := l.Divide(0); got != l {
		t.Errorf("Divide(0) = %+v, want the whole", got)
	}
	if s := l.Divide(4).String(); s != "10/s, 25MiB/s" {
		t.Errorf("String = %q", s)
	}
}

func TestSetSharesOneLimiterPerHost(t *testing.T) {
	t.Parallel()
	if NewSet(nil, Limits{}) != nil || NewSet(map[string]Limits{"a": {}}, Limits{}) != nil {
		t.Error("a set that limits nothing must be nil (no cost)")
	}
	var none *Set
	if none.For("a") != nil {
		t.Error("a nil set gives limiters")
	}
	s := NewSet(map[string]Limits{"src:5000": {Requests: 10}}, Limits{})
	a, b := s.For("src:5000"), s.For("src:5000")
	if a == nil || a != b {
		t.Errorf("two calls for one host gave %p and %p: every request to a host must share one limiter", a, b)
	}
	if s.For("other:5000") != nil {
		t.Error("a host without limits got a limiter")
	}
	all := NewSet(nil, Limits{Bytes: 1 << 20})
	if all.For("x") == nil || all.For("x") == all.For("y") {
		t.Error("the limits for every registry must give each host its own limiter")
	}
}

func TestAWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	l := New(Limits{Requests: 0.001})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Request(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Request on a cancelled context waiting 1000 s: %v, want ErrStopped", err)
	}
	if n, _ := l.Counts(); n != 1 {
		t.Errorf("counted %d requests, want 1", n)
	}
}
