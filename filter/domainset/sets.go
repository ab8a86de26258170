package domainset

import "encoding/binary"

// NumSets returns the number of distinct category sets: set IDs run from 0
// to NumSets()-1, so callers can precompute something per set.
func (s *Set) NumSets() int {
	if s == nil || len(s.setOff) == 0 {
		return 0
	}
	return len(s.setOff) - 1
}

// SetSizes returns how many distinct domains of s have each set ID: the
// slice is indexed by set ID and has NumSets() elements (nil for a nil or
// empty s). It walks every record once, so it is for statistics built
// beside the set, not for the request path.
func (s *Set) SetSizes() []int {
	if s.NumSets() == 0 {
		return nil
	}
	sizes := make([]int, s.NumSets())
	for off := 1; off < len(s.blob); {
		r := s.blob[off:]
		var set uint32
		if s.set4 {
			set = binary.LittleEndian.Uint32(r[3:7])
		} else {
			set = uint32(binary.LittleEndian.Uint16(r[3:5]))
		}
		sizes[set]++
		off += s.hdr + int(r[0])
	}
	return sizes
}
