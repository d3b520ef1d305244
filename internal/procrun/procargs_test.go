package procrun

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestParseProcArgs(t *testing.T) {
	// procargs builds a kern.procargs2 buffer as macOS lays it out.
	procargs := func(argc uint32, rest string) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, argc), rest...)
	}
	tests := []struct {
		name string
		in   []byte
		want string // the variables, joined by '|'
	}{
		{"whole", procargs(2, "/bin/sleep\x00\x00\x00\x00sleep\x0030\x00BMC_RUN_ID=r1\x00HOME=/h\x00\x00ptr_munge=\x00"), "BMC_RUN_ID=r1|HOME=/h"},
		{"no padding", procargs(1, "/bin/x\x00x\x00A=1\x00"), "A=1"},
		{"cut in the environment", procargs(1, "/bin/x\x00x\x00A=1\x00B=2"), "A=1|B=2"},
		{"cut in the arguments", procargs(3, "/bin/x\x00x\x00y"), ""},
		{"no environment", procargs(1, "/bin/x\x00x\x00\x00executable_path=/bin/x\x00"), ""},
		{"too short", []byte{1, 0}, ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, v := range parseProcArgs(tt.in) {
				got = append(got, string(v))
			}
			if g := strings.Join(got, "|"); g != tt.want {
				t.Errorf("parseProcArgs = %q, want %q", g, tt.want)
			}
		})
	}
}
