package emulator

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		std     time.Duration
	}{
		{"PT0S", "PT0S", 0},
		{"PT1H30M", "PT1H30M", 90 * time.Minute},
		{"PT0.5S", "PT0.5S", 500 * time.Millisecond},
		{"P7D", "P7D", 7 * 24 * time.Hour},
		{"P1DT2H3M4.0000005S", "P1DT2H3M4.0000005S", 26*time.Hour + 3*time.Minute + 4*time.Second + 500*time.Nanosecond},
		{"P2W", "P14D", 14 * 24 * time.Hour},
		{"P1Y", "P365D", 365 * 24 * time.Hour},
		{"PT90M", "PT1H30M", 90 * time.Minute},
		{"P10675199DT2H48M5.4775807S", "P10675199DT2H48M5.4775807S", -1},
	} {
		d, err := ParseDuration(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if d.String() != tc.out {
			t.Errorf("%s formats as %s, want %s", tc.in, d, tc.out)
		}
		std, ok := d.Std()
		if tc.std < 0 && ok || tc.std >= 0 && (!ok || std != tc.std) {
			t.Errorf("%s: Std() = %v %v, want %v", tc.in, std, ok, tc.std)
		}
	}
	for _, bad := range []string{"", "P", "PT", "1H", "PT1.5H", "P1DT", "PT1S2M", "P10675199DT2H48M5.4775808S", "P99999999999999999999D"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if d, _ := ParseDuration("-PT1M"); d >= 0 {
		t.Errorf("negative duration parsed as %v", d)
	}
}

func TestTimeFormat(t *testing.T) {
	b, err := json.Marshal(Time{time.Date(2025, 11, 21, 22, 43, 31, 473347600, time.FixedZone("x", 3600))})
	if err != nil || string(b) != `"2025-11-21T21:43:31.4733476Z"` {
		t.Errorf("got %s %v", b, err)
	}
}
