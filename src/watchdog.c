// SPDX-License-Identifier: LGPL-2.1-or-later
#include "watchdog.h"

void sw_wd_init(struct sw_wd *wd, uint32_t stall_ticks, uint32_t timer_div)
{
	wd->reads = 0;
	wd->div = timer_div;
	wd->limit = (uint64_t)stall_ticks * timer_div + 2;
}

uint64_t sw_wd_counted(const struct sw_wd *wd, const struct sw_wd_stub *s)
{
	uint64_t start = s->deadline - wd->limit; /* the read "before" resume */

	return wd->reads > start + 1 ? wd->reads - start - 1 : 0;
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
	if (next == SW_WD_RUNNING)
		s->deadline = wd->reads + wd->limit;
	if (next != KEEP)
		s->state = next;
	return action;
}
