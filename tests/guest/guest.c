/* guest.c - vmsnap test guest: parses the multiboot command line, fills RAM with the
 * pattern, self-checks it, then idles on PIT ticks and serves c/m/p commands. */
#include <stdarg.h>
#include <stdint.h>
#include "pattern.h"

typedef uint64_t u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef uint8_t u8;

#define FILL_BASE 0x400000ull /* below it: kernel, page tables, stack, multiboot info */
#define MAX_GIB 64            /* identity map limit; RAM above it is ignored */
#define MAX_REGIONS 32
#define MUTATE_MAX 256
#define COM1 0x3f8
#define PIT_HZ 100

struct mb_info {
	u32 flags, mem_lower, mem_upper, boot_device, cmdline;
	u32 mods_count, mods_addr, syms[4], mmap_length, mmap_addr;
};
struct mb_mmap {
	u32 size;
	u64 addr, len;
	u32 type;
} __attribute__((packed));
struct frame;

u64 pml4[512] __attribute__((aligned(4096)));
u64 pdpt[512] __attribute__((aligned(4096)));
u64 pds[MAX_GIB][512] __attribute__((aligned(4096)));
static u64 idt[256 * 2] __attribute__((aligned(16)));

static struct { u64 start, end; } reg[MAX_REGIONS]; /* page-aligned fillable parts */
static int nreg;
static u64 seed = 1, fill_pct = 100, tick_ms = 500, irqs_per_tick;
static u64 fillable, filled;
/* Everything below lives in guest RAM, so it continues across save/restore. */
static volatile u64 irqs, ticks;
static volatile u8 cmdq[16];
static volatile u32 cmd_head, cmd_tail;

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static void putch(char c)
{
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, c);
}

static void putnum(u64 v, unsigned base)
{
	char b[24];
	int n = 0;
	do
		b[n++] = "0123456789abcdef"[v % base];
	while (v /= base);
	while (n)
		putch(b[--n]);
}

/* %u and %x take u64, %s a string. Interrupts are masked so a tick printed by the
 * timer handler can never land in the middle of another line. */
static void say(const char *fmt, ...)
{
	u64 fl;
	va_list ap;
	__asm__ volatile("pushfq; pop %0; cli" : "=r"(fl) :: "memory");
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%')
			putch(*fmt);
		else if (*++fmt == 's')
			for (const char *s = va_arg(ap, const char *); *s; s++)
				putch(*s);
		else
			putnum(va_arg(ap, u64), *fmt == 'x' ? 16 : 10);
	}
	va_end(ap);
	if (fl & 0x200)
		__asm__ volatile("sti" ::: "memory");
}

static void die(const char *why)
{
	say("FATAL %s\n", why);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static u64 parse_num(const char *s)
{
	u64 v = 0, base = 10;
	if (s[0] == '0' && (s[1] | 0x20) == 'x')
		base = 16, s += 2;
	for (;; s++) {
		unsigned d = (unsigned)(*s - '0'), l = (unsigned)((*s | 0x20) - 'a');
		if (d < 10)
			v = v * base + d;
		else if (base == 16 && l < 6)
			v = v * base + l + 10;
		else
			return v;
	}
}

static int prefix(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

/* QEMU passes "<kernel path> <-append text>"; only whole key=value tokens count. */
static void parse_cmdline(const char *s)
{
	while (*s) {
		if (prefix(s, "seed="))
			seed = parse_num(s + 5);
		else if (prefix(s, "fill="))
			fill_pct = parse_num(s + 5);
		else if (prefix(s, "tick_ms="))
			tick_ms = parse_num(s + 8);
		while (*s && *s != ' ')
			s++;
		while (*s == ' ')
			s++;
	}
	if (fill_pct > 100)
		fill_pct = 100;
}

static void map_ram(u64 top)
{
	u64 gib = (top + (1ull << 30) - 1) >> 30;
	for (u64 g = 1; g < gib && g < MAX_GIB; g++) {
		for (u64 i = 0; i < 512; i++)
			pds[g][i] = (g << 30) | (i << 21) | 0x83;
		pdpt[g] = (u64)pds[g] | 3;
	}
	__asm__ volatile("mov %0, %%cr3" :: "r"((u64)pml4) : "memory");
}

static void scan_mmap(const struct mb_info *mb)
{
	u64 top = 0;
	if (!(mb->flags & 0x40))
		die("no multiboot memory map");
	for (u64 a = mb->mmap_addr; a < (u64)mb->mmap_addr + mb->mmap_length;) {
		const struct mb_mmap *m = (const struct mb_mmap *)a;
		a += m->size + 4;
		if (m->type != 1)
			continue;
		say("mem region 0x%x 0x%x\n", m->addr, m->addr + m->len);
		u64 s = (m->addr > FILL_BASE ? m->addr : FILL_BASE) + 4095, e = m->addr + m->len;
		s &= ~4095ull;
		if (e > (u64)MAX_GIB << 30)
			e = (u64)MAX_GIB << 30;
		e &= ~4095ull;
		if (e > top)
			top = e;
		if (s >= e || nreg == MAX_REGIONS)
			continue;
		int i = nreg++; /* insertion sort: fill order must be ascending */
		for (; i > 0 && reg[i - 1].start > s; i--)
			reg[i] = reg[i - 1];
		reg[i].start = s, reg[i].end = e;
		fillable += (e - s) >> 12;
	}
	map_ram(top);
}

/* Address of the k-th fillable page; regions are few, so a scan is cheap enough. */
static u64 nth_page(u64 k)
{
	for (int i = 0; i < nreg; i++) {
		u64 n = (reg[i].end - reg[i].start) >> 12;
		if (k < n)
			return reg[i].start + (k << 12);
		k -= n;
	}
	return 0;
}

static void fill_all(void)
{
	u64 run = 0, prev = 0;
	for (u64 k = 0; k < filled; k++) {
		u64 p = nth_page(k);
		pat_page((u64 *)p, seed, p);
		if (p != prev + 4096) { /* always true for k == 0 (p >= FILL_BASE) */
			if (k)
				say("fill range 0x%x 0x%x\n", run, prev + 4096);
			run = p;
		}
		prev = p;
	}
	if (filled)
		say("fill range 0x%x 0x%x\n", run, prev + 4096);
	say("fill done pages=%u\n", filled);
}

/* Differences are OR-ed per page: a branch per word would end a TCG block per word. */
static u64 check_page(u64 p, int want_pattern)
{
	const u64 *w = (const u64 *)p;
	u64 x = pat_first(seed, p), d = 0;
	if (want_pattern) {
#pragma GCC unroll 32
		for (int i = 0; i < 512; i++)
			d |= w[i] ^ (x = pat_next(x));
	} else {
#pragma GCC unroll 32
		for (int i = 0; i < 512; i++)
			d |= w[i];
	}
	if (!d)
		return 0;
	x = pat_first(seed, p);
	for (int i = 0;; i++) {
		x = pat_next(x);
		if (w[i] != (want_pattern ? x : 0))
			return p + 8 * (u64)i;
	}
}

/* SeaBIOS leaves its relocated POST code in RAM it reports as usable, so zero the
 * unfilled pages that are not already zero (and only those: the rest stay untouched). */
static void scrub(void)
{
	u64 n = 0;
	for (u64 k = filled; k < fillable; k++) {
		u64 *w = (u64 *)nth_page(k);
		if (!check_page((u64)w, 0))
			continue;
		for (int i = 0; i < 512; i++)
			w[i] = 0;
		n++;
	}
	if (n)
		say("scrub pages=%u\n", n);
}

static void check_all(void)
{
	for (u64 k = 0; k < fillable; k++) {
		u64 p = nth_page(k), bad = check_page(p, k < filled);
		if (bad) {
			say("check FAIL addr=0x%x\n", bad);
			return;
		}
	}
	say("check ok pages=%u zero=%u\n", filled, fillable - filled);
}

static void mutate(void)
{
	u64 n = filled < MUTATE_MAX ? filled : MUTATE_MAX;
	for (u64 k = 0; k < n; k++) {
		u64 p = nth_page(k);
		pat_page((u64 *)p, seed ^ 0xdeadbeef, p);
	}
	say("mutate done pages=%u\n", n);
}

static void queue_cmd(u8 c)
{
	if ((c == 'c' || c == 'm' || c == 'p') && cmd_head - cmd_tail < sizeof(cmdq))
		cmdq[cmd_head++ % sizeof(cmdq)] = c;
}

/* Polled, not interrupt driven: two port reads per tick when nothing arrives. */
static void poll_input(void)
{
	u8 st;
	for (int i = 0; i < 16 && (inb(COM1 + 5) & 1); i++)
		queue_cmd(inb(COM1));
	for (int i = 0; i < 16 && ((st = inb(0x64)) & 1); i++) {
		u8 sc = inb(0x60); /* scancode set 1 make codes */
		if (!(st & 0x20)) /* not mouse data */
			queue_cmd(sc == 0x2e ? 'c' : sc == 0x32 ? 'm' : sc == 0x19 ? 'p' : 0);
	}
}

__attribute__((interrupt)) static void isr_timer(struct frame *f)
{
	(void)f;
	poll_input();
	if (++irqs % irqs_per_tick == 0) {
		ticks++;
		say("tick %u\n", ticks);
	}
	outb(0x20, 0x20);
}

__attribute__((interrupt)) static void isr_ignore(struct frame *f) { (void)f; }

__attribute__((interrupt)) static void isr_fault(struct frame *f)
{
	say("FATAL exception rip=0x%x\n", *(u64 *)f);
	die("halted");
}

__attribute__((interrupt)) static void isr_fault_err(struct frame *f, u64 err)
{
	u64 cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	say("FATAL exception rip=0x%x err=0x%x cr2=0x%x\n", *(u64 *)f, err, cr2);
	die("halted");
}

static void set_gate(int v, void *h)
{
	u64 a = (u64)h;
	idt[2 * v] = (a & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((a >> 16 & 0xffff) << 48);
	idt[2 * v + 1] = a >> 32;
}

static void idt_init(void)
{
	struct { u16 lim; u64 base; } __attribute__((packed)) d = { sizeof(idt) - 1, (u64)idt };
	for (int v = 0; v < 256; v++)
		set_gate(v, v >= 32 ? (void *)isr_ignore :
			 (0x60227d00ul >> v & 1) ? (void *)isr_fault_err : (void *)isr_fault);
	set_gate(32, isr_timer);
	__asm__ volatile("lidt %0" :: "m"(d));
}

static void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no UART interrupts: everything is polled */
	outb(COM1 + 3, 0x80);
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0xc7);
	outb(COM1 + 4, 0x03);
}

static void timer_init(void)
{
	static const u8 pic[] = { 0x11, 0x20, 0x04, 0x01, 0xfe, 0x11, 0x28, 0x02, 0x01, 0xff };
	u32 div = (1193182 + PIT_HZ / 2) / PIT_HZ;
	for (int i = 0; i < 10; i++) /* vectors 32..47, only IRQ0 unmasked */
		outb((i < 5 ? 0x20 : 0xa0) + (i % 5 != 0), pic[i]);
	outb(0x43, 0x34); /* channel 0, lo/hi byte, rate generator */
	outb(0x40, div & 0xff);
	outb(0x40, div >> 8);
	irqs_per_tick = tick_ms * PIT_HZ / 1000 ? tick_ms * PIT_HZ / 1000 : 1;
}

void kmain(u32 magic, u32 mbi);
void kmain(u32 magic, u32 mbi)
{
	const struct mb_info *mb = (const struct mb_info *)(u64)mbi;
	serial_init();
	idt_init();
	if (magic != 0x2badb002)
		die("not booted by multiboot");
	if (mb->flags & 4)
		parse_cmdline((const char *)(u64)mb->cmdline);
	say("vmsnap-guest start seed=%u fill=%u tick_ms=%u\n", seed, fill_pct, tick_ms);
	scan_mmap(mb);
	filled = fillable * fill_pct / 100;
	fill_all();
	scrub();
	check_all();
	timer_init();
	for (;;) {
		__asm__ volatile("cli" ::: "memory");
		if (cmd_tail == cmd_head) {
			__asm__ volatile("sti; hlt" ::: "memory"); /* sti shadow: no lost wakeup */
			continue;
		}
		u8 c = cmdq[cmd_tail++ % sizeof(cmdq)];
		__asm__ volatile("sti" ::: "memory");
		if (c == 'c')
			check_all();
		else if (c == 'm')
			mutate();
		else
			say("status ticks=%u seed=%u fill=%u\n", ticks, seed, fill_pct);
	}
}
