package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/pattern"
)

// LatencyStats summarises round-trip times in microseconds.
type LatencyStats struct {
	MinUs  float64 `json:"min_us"`
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	P999Us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
}

// runEcho does p.Count round trips of p.Size bytes over ECHO streams: all on
// one stream when p.Streams is 1, else spread over p.Streams streams that
// run concurrently (each sequentially).
func runEcho(sess *smux.Session, p Params, res *Result) error {
	counts := split(int64(p.Count), p.Streams)
	lat := make([][]time.Duration, p.Streams)
	payload := bytes.NewBuffer(nil)
	_ = pattern.Write(payload, int64(p.Size))

	start := time.Now()
	err := parallel(p.Streams, func(i int) error {
		st, err := sess.OpenStream()
		if err != nil {
			return fmt.Errorf("OpenStream: %w", err)
		}
		defer st.Close()
		lat[i], err = echoRounds(st, payload.Bytes(), int(counts[i]))
		if err != nil {
			return fmt.Errorf("stream %d: %w", st.ID(), err)
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	res.Size, res.Count = p.Size, p.Count
	res.Bytes = int64(p.Size) * int64(p.Count)
	res.Seconds = elapsed.Seconds()
	res.MiBPerSec = mibPerSec(res.Bytes, elapsed)
	res.RoundTripsPerSec = float64(p.Count) / elapsed.Seconds()
	res.LatencyStats = summarize(all)
	return nil
}

// echoRounds sends "ECHO\n", then n times writes payload and reads it back.
func echoRounds(st *smux.Stream, payload []byte, n int) ([]time.Duration, error) {
	if _, err := io.WriteString(st, "ECHO\n"); err != nil {
		return nil, fmt.Errorf("writing ECHO: %w", err)
	}
	got := make([]byte, len(payload))
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := st.Write(payload); err != nil {
			return nil, fmt.Errorf("round trip %d: write: %w", i, err)
		}
		if _, err := io.ReadFull(st, got); err != nil {
			return nil, fmt.Errorf("round trip %d: read: %w", i, err)
		}
		lat = append(lat, time.Since(t0))
		if !bytes.Equal(got, payload) {
			return nil, fmt.Errorf("round trip %d: echo differs from what was sent", i)
		}
	}
	return lat, nil
}

func summarize(d []time.Duration) *LatencyStats {
	if len(d) == 0 {
		return nil
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	us := func(v time.Duration) float64 { return float64(v.Nanoseconds()) / 1e3 }
	// nearest-rank percentile
	pct := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return us(d[min(max(i, 0), len(d)-1)])
	}
	return &LatencyStats{
		MinUs: us(d[0]), MeanUs: us(sum) / float64(len(d)),
		P50Us: pct(0.50), P90Us: pct(0.90), P99Us: pct(0.99), P999Us: pct(0.999),
		MaxUs: us(d[len(d)-1]),
	}
}
