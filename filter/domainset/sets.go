package domainset

// NumSets returns the number of distinct category sets: set IDs run from 0
// to NumSets()-1, so callers can precompute something per set.
func (s *Set) NumSets() int {
	if s == nil || len(s.setOff) == 0 {
		return 0
	}
	return len(s.setOff) - 1
}
