// SPDX-License-Identifier: LGPL-2.1-or-later
#include "watchdog.h"

void sw_wd_init(struct sw_wd *wd, uint32_t stall_ticks, uint32_t timer_div)
{
	wd->reads = 0;
	wd->periods = 0;
	wd->dropped = 0;
	wd->div = timer_div;
	wd->limit = (uint64_t)stall_ticks * timer_div + 1;
	wd->credit_max = (uint64_t)stall_ticks * timer_div;
}

uint64_t sw_wd_credit(const struct sw_wd *wd, struct sw_wd_stub *s,
		      uint64_t periods)
{
	uint64_t room;

	if (s->state != SW_WD_RUNNING || s->credit >= wd->credit_max)
		return 0;
	room = wd->credit_max - s->credit;
	if (periods > room)
		periods = room;
	s->credit += periods;
	return periods;
}

/* Next state and action for each state x event; KEEP keeps the state. */
#define KEEP 0xff
static const struct {
	uint8_t next;
	uint8_t action;
} table[SW_WD_NSTATES][SW_WD_NEVENTS] = {
	[SW_WD_IDLE] = {
		[SW_WD_EV_RESUME]       = { SW_WD_RUNNING, SW_WD_NONE },
		[SW_WD_EV_REPORT]       = { KEEP, SW_WD_NONE }, /* not asked */
		[SW_WD_EV_NOISE]        = { KEEP, SW_WD_NONE },
		[SW_WD_EV_BAD]          = { SW_WD_KILLING, SW_WD_KILL_PROTOCOL },
		[SW_WD_EV_EXPIRE]       = { KEEP, SW_WD_NONE },
		[SW_WD_EV_KILL]         = { SW_WD_KILLING, SW_WD_KILL_USER },
		[SW_WD_EV_DEATH]        = { SW_WD_DEAD, SW_WD_DONE_EXIT },
		[SW_WD_EV_ANSWER]       = { KEEP, SW_WD_NONE }, /* not asked */
	},
	[SW_WD_RUNNING] = {
		[SW_WD_EV_RESUME]       = { KEEP, SW_WD_REFUSE },
		[SW_WD_EV_REPORT]       = { SW_WD_IDLE, SW_WD_DONE_REPORT },
		[SW_WD_EV_NOISE]        = { KEEP, SW_WD_NONE }, /* not progress */
		[SW_WD_EV_BAD]          = { SW_WD_KILLING, SW_WD_KILL_PROTOCOL },
		[SW_WD_EV_EXPIRE]       = { SW_WD_KILLING, SW_WD_KILL_STALL },
		[SW_WD_EV_KILL]         = { SW_WD_KILLING, SW_WD_KILL_USER },
		[SW_WD_EV_DEATH]        = { SW_WD_DEAD, SW_WD_DONE_EXIT },
		[SW_WD_EV_ANSWER]       = { SW_WD_IDLE, SW_WD_DONE_ANSWER },
	},
	[SW_WD_KILLING] = {
		[SW_WD_EV_RESUME]       = { KEEP, SW_WD_NONE }, /* death pending */
		[SW_WD_EV_REPORT]       = { KEEP, SW_WD_NONE },
		[SW_WD_EV_NOISE]        = { KEEP, SW_WD_NONE },
		[SW_WD_EV_BAD]          = { KEEP, SW_WD_NONE },
		[SW_WD_EV_EXPIRE]       = { KEEP, SW_WD_NONE },
		[SW_WD_EV_KILL]         = { KEEP, SW_WD_NONE },
		[SW_WD_EV_DEATH]        = { SW_WD_DEAD, SW_WD_DONE_KILL },
		[SW_WD_EV_ANSWER]       = { KEEP, SW_WD_NONE },
	},
	[SW_WD_DEAD] = {
		[SW_WD_EV_RESUME]       = { KEEP, SW_WD_NONE },
		[SW_WD_EV_REPORT]       = { KEEP, SW_WD_NONE },
		[SW_WD_EV_NOISE]        = { KEEP, SW_WD_NONE },
		[SW_WD_EV_BAD]          = { KEEP, SW_WD_NONE },
		[SW_WD_EV_EXPIRE]       = { KEEP, SW_WD_NONE },
		[SW_WD_EV_KILL]         = { KEEP, SW_WD_NONE },
		[SW_WD_EV_DEATH]        = { KEEP, SW_WD_NONE },
		[SW_WD_EV_ANSWER]       = { KEEP, SW_WD_NONE },
	},
};

enum sw_wd_action sw_wd_step(const struct sw_wd *wd, struct sw_wd_stub *s,
			     enum sw_wd_event ev)
{
	uint8_t next, action;

	if (s->state >= SW_WD_NSTATES || (unsigned)ev >= SW_WD_NEVENTS)
		return SW_WD_REFUSE;
	next = table[s->state][ev].next;
	action = table[s->state][ev].action;
	if (next == SW_WD_RUNNING) {
		s->base = SW_WD_UNSTAMPED;
		s->credit = 0;
	}
	if (next != KEEP)
		s->state = next;
	return action;
}
