package filter

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a set of weekly time windows in one time zone. A rule with a
// schedule applies only inside one of its windows.
type Schedule struct {
	// Days are the weekdays the windows apply to. Nil or empty means every
	// day.
	Days []time.Weekday
	// From and To are minutes after midnight, local time, To exclusive.
	// From == To == 0 means the whole day. To < From is a window that runs
	// past midnight into the next day (the next day counts as part of the
	// window even if it is not in Days).
	From, To int
	// Location is the time zone. Nil means UTC.
	Location *time.Location
}

// Contains reports whether t falls in the schedule.
func (s *Schedule) Contains(t time.Time) bool {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	minute := lt.Hour()*60 + lt.Minute()
	day := lt.Weekday()
	switch {
	case s.From == s.To:
		return s.hasDay(day)
	case s.From < s.To:
		return s.hasDay(day) && minute >= s.From && minute < s.To
	default: // overnight
		return (s.hasDay(day) && minute >= s.From) || (s.hasDay((day+6)%7) && minute < s.To)
	}
}

func (s *Schedule) hasDay(d time.Weekday) bool {
	if len(s.Days) == 0 {
		return true
	}
	for _, x := range s.Days {
		if x == d {
			return true
		}
	}
	return false
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseDay parses a weekday as written in the config: "mon", "monday",
// any case.
func ParseDay(s string) (time.Weekday, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	if len(k) >= 3 {
		if d, ok := dayNames[k[:3]]; ok && (len(k) == 3 || strings.EqualFold(k, d.String())) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%q is not a day of the week (mon, tue, ... sun)", s)
}

// ParseClock parses "HH:MM" (24-hour) into minutes after midnight. "24:00"
// is allowed as the end of the day.
func ParseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM, 24-hour)", s)
	}
	return hh*60 + mm, nil
}
