package filepattern

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{
		"AZ_BATCH_TASK_ID": "t1",
		"EMPTY":            "",
		"DIR":              "out/sub",
		"STAR":             "*",
	}
	tests := []struct{ in, want string }{
		{"$AZ_BATCH_TASK_ID.txt", "t1.txt"},
		{"${AZ_BATCH_TASK_ID}.txt", "t1.txt"},
		{"%AZ_BATCH_TASK_ID%.txt", "t1.txt"},
		{"a$AZ_BATCH_TASK_ID-b", "at1-b"},
		{"$DIR/*.bam", "out/sub/*.bam"},
		{"$STAR.txt", "*.txt"},
		{"x$EMPTY.txt", "x.txt"},
		{"%EMPTY%x", "x"},
		// Unknown names are left as written, in braces.
		{"lit$UNSET.txt", "lit${UNSET}.txt"},
		{"lit${UNSET}.txt", "lit${UNSET}.txt"},
		{"%UNSET%.txt", "%UNSET%.txt"},
		{"$1.txt", "${1}.txt"},
		// A dollar sign that starts no name stays.
		{"a$.txt", "a$.txt"},
		{"cost$", "cost$"},
		{"a[$]b", "a[$]b"},
		{"plain/*.txt", "plain/*.txt"},
		{"100%", "100%"},
	}
	for _, tt := range tests {
		if got := Expand(tt.in, vars); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
