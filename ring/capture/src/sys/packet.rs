//! The AF_PACKET TPACKET_V3 receive ring: socket options, the mmap'd ring and its blocks.
//!
//! Everything that touches the kernel's shared memory is here, behind a safe API:
//! [`RxRing::current_block`] hands out a [`Block`] only when the kernel has given the block to
//! user space (`TP_STATUS_USER`), the block's bytes are exposed as an immutable slice for as
//! long as the [`Block`] lives, and dropping the [`Block`] hands it back (`TP_STATUS_KERNEL`).
//! Frame headers inside a block are parsed from that slice with bounds checks, so a corrupt
//! block (never seen from a correct kernel) is counted, not trusted.

use std::ffi::CString;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::SysError;

/// Options for one capture socket.
#[derive(Clone, Debug)]
pub struct RingOptions {
    pub ifindex: u32,
    /// Bytes per ring block (a multiple of the page size).
    pub block_size: usize,
    pub block_count: usize,
    /// Milliseconds after which a partly filled block is retired to user space.
    pub retire_ms: u32,
    /// Fanout (flow hash) membership, when several sockets share the interface.
    pub fanout: Option<Fanout>,
    /// Classic BPF program attached before the socket is bound (also applies the snaplen).
    pub filter: Vec<BpfInsn>,
    /// Ask the NIC for hardware receive timestamps (falls back to software).
    pub hardware_timestamps: bool,
    /// Put the interface in promiscuous mode for as long as the socket is open.
    pub promiscuous: bool,
}

/// How a socket takes part in a PACKET_FANOUT group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    /// Create a group with a kernel-chosen unique id (read it back with `fanout_id`).
    NewGroup,
    /// Join the group with this id.
    Join(u16),
}

/// Rings [`wait_any`] can wait on at once (its poll set lives on the stack).
pub const MAX_WAIT_RINGS: usize = 16;

/// Waits until one of `rings` may have a block ready, at most `timeout_ms`. Allocation-free.
///
/// A socket whose interface went down or away has a pending error (`ENETDOWN`) that makes
/// every poll return at once; it is read and cleared here (`SO_ERROR`), so a capture thread
/// on a dead link sleeps in poll instead of spinning. Returns a bit per ring (in iteration
/// order) whose error was cleared, for the caller to count.
pub fn wait_any<'a>(rings: impl Iterator<Item = &'a RxRing>, timeout_ms: i32) -> u32 {
    let mut fds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_WAIT_RINGS];
    let mut n = 0;
    for r in rings.take(MAX_WAIT_RINGS) {
        fds[n] = libc::pollfd {
            fd: r.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        n += 1;
    }
    // SAFETY: `fds[..n]` are valid pollfds on the stack; errors (EINTR) only end the wait.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    let mut errored = 0u32;
    if rc > 0 {
        for (k, p) in fds[..n].iter().enumerate() {
            if p.revents & libc::POLLERR != 0 {
                take_socket_error(p.fd);
                errored |= 1 << k;
            }
        }
    }
    errored
}

/// Reads and clears a socket's pending error (`SO_ERROR`); 0 when there was none.
fn take_socket_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of the sizes given.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    err
}

/// An `ifreq` naming `name` (at most IFNAMSIZ-1 bytes), the rest zero.
pub(crate) fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    req
}

/// Binds packet socket `fd` to `ifindex`, receiving every protocol (`ETH_P_ALL`), or
/// nothing at all with `ifindex` 0 (protocol 0 unhooks the socket from the interface).
fn bind_fd(fd: RawFd, ifindex: u32) -> Result<(), SysError> {
    // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    if ifindex != 0 {
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    }
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_os_error("bind to the capture interface"));
    }
    Ok(())
}

/// Binds packet socket `fd` to every interface (`ETH_P_ALL`, ifindex 0). For the sockets
/// of a fanout group, which the kernel never lets bind again: their filter picks the
/// capture interface by ifindex instead ([`for_ifindex`]), and a re-created interface is
/// captured again by swapping that filter.
fn bind_all(fd: RawFd) -> Result<(), SysError> {
    // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_os_error("bind to every interface (fanout)"));
    }
    Ok(())
}

/// Classic BPF: `ld ifidx` (the ancillary load SKF_AD_OFF + SKF_AD_IFINDEX), `jeq #k`,
/// `ret #k`.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SKF_AD_IFINDEX_K: u32 = (-0x1000i32) as u32 + 8;

/// `prog` (empty: accept everything) for frames of interface `ifindex` only; frames of
/// any other interface are refused before it runs. Its jumps are relative, so prefixing
/// leaves them intact.
pub fn for_ifindex(prog: &[BpfInsn], ifindex: u32) -> Vec<BpfInsn> {
    let insn = |code, jt, jf, k| BpfInsn { code, jt, jf, k };
    let mut p = vec![
        insn(BPF_LD_W_ABS, 0, 0, SKF_AD_IFINDEX_K),
        // Equal: skip the refusal.
        insn(BPF_JEQ_K, 1, 0, ifindex),
        insn(BPF_RET_K, 0, 0, 0),
    ];
    if prog.is_empty() {
        p.push(insn(BPF_RET_K, 0, 0, u32::MAX));
    } else {
        p.extend_from_slice(prog);
    }
    p
}

/// Attaches classic BPF program `prog` to `fd` (replacing any filter it had).
fn attach_filter(fd: RawFd, prog: &[BpfInsn]) -> Result<(), SysError> {
    let mut prog: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &fprog,
        "SO_ATTACH_FILTER",
    )
}

fn add_promisc(fd: RawFd, ifindex: u32) -> Result<(), SysError> {
    // SAFETY: an all-zero packet_mreq is valid.
    let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mreq.mr_ifindex = ifindex as i32;
    mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
    setsockopt(
        fd,
        libc::SOL_PACKET,
        libc::PACKET_ADD_MEMBERSHIP,
        &mreq,
        "PACKET_ADD_MEMBERSHIP promisc",
    )
}

/// What the supervisor sees of a capture interface, asked through the capture socket (so in
/// the socket's network namespace, whatever namespace the asking thread is in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// No interface of that name exists (deleted, or not re-created yet).
    Gone,
    /// The interface exists; `up` = administratively up and running (carrier).
    Present { ifindex: u32, up: bool, mtu: u32 },
}

/// A second handle on a capture socket for the supervisor thread: the state of the
/// interface, and a rebind once an interface of the same name is back with a new ifindex.
///
/// Why a rebind needs no privilege: only *creating* an AF_PACKET socket checks CAP_NET_RAW;
/// `bind(2)` and `PACKET_ADD_MEMBERSHIP` on a socket we already hold do not. So the capture
/// keeps its sockets and their mapped rings for its whole life, every thread still drops
/// every capability after start-up, and an interface that comes back is captured again by
/// re-binding the same socket (the ring, the filter and the read position stay).
pub struct RingControl {
    fd: OwnedFd,
    /// A fanout socket (bound to every interface): its capture filter, and the interface
    /// the filter picks now (see [`bind_all`]).
    fanout: Option<(Vec<BpfInsn>, std::cell::Cell<u32>)>,
}

impl RingControl {
    fn ioctl_ifreq(&self, req: libc::c_ulong, ifr: &mut libc::ifreq) -> std::io::Result<()> {
        // SAFETY: `ifr` is a valid ifreq for the duration of the call; the request codes
        // used here only read or write the ifreq itself.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), req as _, ifr as *mut libc::ifreq) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The state of interface `name` now.
    pub fn link(&self, name: &str) -> Result<LinkState, SysError> {
        let mut ifr = ifreq_for(name);
        match self.ioctl_ifreq(libc::SIOCGIFINDEX, &mut ifr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(LinkState::Gone),
            Err(source) => {
                return Err(SysError::Os {
                    what: "SIOCGIFINDEX",
                    source,
                });
            }
        }
        // SAFETY: SIOCGIFINDEX filled the ifindex member of the union.
        let ifindex = unsafe { ifr.ifr_ifru.ifru_ifindex } as u32;
        let mut ifr = ifreq_for(name);
        let flags = match self.ioctl_ifreq(libc::SIOCGIFFLAGS, &mut ifr) {
            // SAFETY: SIOCGIFFLAGS filled the flags member.
            Ok(()) => i32::from(unsafe { ifr.ifr_ifru.ifru_flags }) & 0xffff,
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(LinkState::Gone),
            Err(_) => 0,
        };
        let mut ifr = ifreq_for(name);
        let mtu = match self.ioctl_ifreq(libc::SIOCGIFMTU, &mut ifr) {
            // SAFETY: SIOCGIFMTU filled the mtu member.
            Ok(()) => unsafe { ifr.ifr_ifru.ifru_mtu }.max(0) as u32,
            Err(_) => 0,
        };
        let up = flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0;
        Ok(LinkState::Present { ifindex, up, mtu })
    }

    /// The interface the socket is bound to now (`getsockname`): `None` once the kernel
    /// unhooked it because its interface was unregistered (deleted, or moved to another
    /// namespace), so that a re-created interface that got the same ifindex back (an
    /// interface moved in from another namespace keeps its number) is still bound anew.
    pub fn bound_ifindex(&self) -> Option<u32> {
        if let Some((_, picked)) = &self.fanout {
            // Bound to every interface: the one its filter picks.
            return Some(picked.get());
        }
        // SAFETY: an all-zero sockaddr_ll is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `sll` is writable for `len` bytes and `len` is a valid pointer for the
        // duration of the call.
        let rc = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if rc != 0 || sll.sll_ifindex <= 0 {
            return None;
        }
        Some(sll.sll_ifindex as u32)
    }

    /// Binds the socket to `ifindex` (an interface re-created under the same name), and
    /// puts it in promiscuous mode again when asked. A socket in a fanout group (which the
    /// kernel refuses to re-bind) is bound to every interface: its filter is swapped for
    /// one that picks `ifindex` instead (no privilege needed either).
    pub fn rebind(&self, ifindex: u32, promiscuous: bool) -> Result<(), SysError> {
        match &self.fanout {
            Some((prog, picked)) => {
                attach_filter(self.fd.as_raw_fd(), &for_ifindex(prog, ifindex))?;
                picked.set(ifindex);
            }
            None => bind_fd(self.fd.as_raw_fd(), ifindex)?,
        }
        if promiscuous {
            add_promisc(self.fd.as_raw_fd(), ifindex)?;
        }
        Ok(())
    }

    /// The raw descriptor, for the offload ioctls (`sys::ethtool`).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Counters the kernel keeps per socket; each read resets them (`PACKET_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets that passed the filter, including those dropped.
    pub packets: u64,
    /// Packets the kernel could not put into the ring (ring full).
    pub drops: u64,
    /// Times the ring was frozen because no block was free.
    pub freeze_q: u64,
}

/// A mapped TPACKET_V3 receive ring and its socket.
pub struct RxRing {
    fd: OwnedFd,
    base: NonNull<u8>,
    map_len: usize,
    block_size: usize,
    block_count: usize,
    next: usize,
    /// Blocks taken by the zero-copy path (`sys::zc`): passed by the read position but not
    /// handed back to the kernel, their memory being written to disk.
    held: Vec<bool>,
    held_count: usize,
    /// The ring memory is locked (MAP_LOCKED succeeded).
    pub locked: bool,
    /// The NIC accepted hardware receive timestamping.
    pub hardware_timestamps: bool,
    /// In a fanout group: bound to every interface, the capture filter (without the
    /// interface check) and the interface picked (see [`bind_all`]).
    fanout: Option<(Vec<BpfInsn>, u32)>,
}

// SAFETY: the ring is owned by exactly one RxRing; the raw pointer refers to a shared mapping
// that is valid from any thread, and all access goes through `&mut self` or a `Block` that
// borrows the ring mutably.
unsafe impl Send for RxRing {}

fn last_os_error(what: &'static str) -> SysError {
    SysError::Os {
        what,
        source: std::io::Error::last_os_error(),
    }
}

fn setsockopt<T>(
    fd: RawFd,
    level: i32,
    name: i32,
    value: &T,
    what: &'static str,
) -> Result<(), SysError> {
    // SAFETY: `value` points to a live, initialized T of the size we pass; the kernel only
    // reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_os_error(what));
    }
    Ok(())
}

/// The interface index of `name`, or an error naming it.
pub fn ifindex(name: &str) -> Result<u32, SysError> {
    let c = CString::new(name).map_err(|_| SysError::BadInterfaceName(name.to_string()))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(SysError::NoSuchInterface {
            name: name.to_string(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(idx)
}

/// Asks the driver of `name` to timestamp every received packet in hardware.
fn enable_hw_timestamps(fd: RawFd, name: &str) -> bool {
    let mut cfg = libc::hwtstamp_config {
        flags: 0,
        tx_type: 0, // HWTSTAMP_TX_OFF
        rx_filter: libc::HWTSTAMP_FILTER_ALL as i32,
    };
    let mut req = ifreq_for(name);
    req.ifr_ifru.ifru_data = (&mut cfg as *mut libc::hwtstamp_config).cast();
    // SAFETY: `req` is a valid ifreq whose data pointer refers to `cfg`, alive for the call.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCSHWTSTAMP as _, &mut req) };
    rc == 0 && cfg.rx_filter != 0
}

impl RxRing {
    /// Opens the socket, sets it up and maps the ring. Needs CAP_NET_RAW (and CAP_IPC_LOCK
    /// for a locked ring larger than RLIMIT_MEMLOCK).
    pub fn open(ifname: &str, opts: &RingOptions) -> Result<RxRing, SysError> {
        // Protocol 0: the socket receives nothing until it is bound below, after the filter
        // and the ring are in place, so no unfiltered packet ever reaches it.
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(last_os_error("socket(AF_PACKET) (needs CAP_NET_RAW)"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();

        let version: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(
            s,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &version,
            "PACKET_VERSION V3",
        )?;

        let mut hardware_timestamps = false;
        if opts.hardware_timestamps && enable_hw_timestamps(s, ifname) {
            let ts: libc::c_int = libc::SOF_TIMESTAMPING_RAW_HARDWARE as libc::c_int;
            hardware_timestamps = setsockopt(
                s,
                libc::SOL_PACKET,
                libc::PACKET_TIMESTAMP,
                &ts,
                "PACKET_TIMESTAMP",
            )
            .is_ok();
        }

        if opts.fanout.is_some() {
            attach_filter(s, &for_ifindex(&opts.filter, opts.ifindex))?;
        } else if !opts.filter.is_empty() {
            attach_filter(s, &opts.filter)?;
        }

        let frame_size = 2048usize; // only a nominal unit in V3; frames are variable-sized
        let req = libc::tpacket_req3 {
            tp_block_size: opts.block_size as u32,
            tp_block_nr: opts.block_count as u32,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: (opts.block_size / frame_size * opts.block_count) as u32,
            tp_retire_blk_tov: opts.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(
            s,
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            &req,
            "PACKET_RX_RING",
        )?;

        let map_len = opts.block_size * opts.block_count;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let mut locked = true;
        // SAFETY: mapping the socket's ring, length as configured above; result checked.
        let mut p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                prot,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                s,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            // Without CAP_IPC_LOCK and above RLIMIT_MEMLOCK: map unlocked (reported).
            locked = false;
            // SAFETY: as above, without MAP_LOCKED.
            p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    prot,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    s,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(last_os_error("mmap of the packet ring"));
            }
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or(SysError::Os {
            what: "mmap returned null",
            source: std::io::Error::other("null mapping"),
        })?;
        let ring = RxRing {
            fd,
            base,
            map_len,
            block_size: opts.block_size,
            block_count: opts.block_count,
            next: 0,
            held: vec![false; opts.block_count],
            held_count: 0,
            locked,
            hardware_timestamps,
            fanout: opts.fanout.map(|_| (opts.filter.clone(), opts.ifindex)),
        };

        if opts.fanout.is_some() {
            bind_all(s)?;
        } else {
            bind_fd(s, opts.ifindex)?;
        }
        if opts.promiscuous {
            add_promisc(s, opts.ifindex)?;
        }

        // A mirror port never carries our own traffic; on an interface that does (veth,
        // lo), outgoing copies would be stored twice. In a fanout group the socket option is
        // ignored, so the group gets the flag instead.
        let one: libc::c_int = 1;
        setsockopt(
            s,
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &one,
            "PACKET_IGNORE_OUTGOING",
        )?;
        if let Some(fanout) = opts.fanout {
            let mode = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
            let (group, mode) = match fanout {
                Fanout::NewGroup => (0u32, mode | libc::PACKET_FANOUT_FLAG_UNIQUEID),
                Fanout::Join(id) => (u32::from(id), mode),
            };
            let arg: libc::c_int = (group | (mode << 16)) as libc::c_int;
            setsockopt(
                s,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                &arg,
                "PACKET_FANOUT (hash)",
            )?;
        }
        Ok(ring)
    }

    /// A handle on this socket for the supervisor thread (a duplicate descriptor).
    pub fn control(&self) -> Result<RingControl, SysError> {
        let fd = self.fd.try_clone().map_err(|source| SysError::Os {
            what: "dup of the capture socket",
            source,
        })?;
        Ok(RingControl {
            fd,
            fanout: self
                .fanout
                .as_ref()
                .map(|(prog, ifindex)| (prog.clone(), std::cell::Cell::new(*ifindex))),
        })
    }

    /// Stops the socket from receiving (unhooks it from its interface); what is in the
    /// ring stays readable. Used at the end of a capture so its last counts are final.
    pub fn detach(&self) -> Result<(), SysError> {
        if self.fanout.is_some() {
            // Cannot unbind: refuse every frame instead.
            return attach_filter(
                self.fd.as_raw_fd(),
                &[BpfInsn {
                    code: BPF_RET_K,
                    jt: 0,
                    jf: 0,
                    k: 0,
                }],
            );
        }
        bind_fd(self.fd.as_raw_fd(), 0)
    }

    /// The id of the fanout group this socket is in (for the next sockets to join).
    pub fn fanout_id(&self) -> Result<u16, SysError> {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(last_os_error("getsockopt(PACKET_FANOUT)"));
        }
        Ok((v as u32 & 0xffff) as u16)
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }
    /// The ring mapping (start, length), for the zero-copy writer (`sys::zc`) only.
    pub(crate) fn mapping(&self) -> (NonNull<u8>, usize) {
        (self.base, self.map_len)
    }
    /// The block index at the read position.
    pub(crate) fn read_index(&self) -> usize {
        self.next
    }
    /// Whether block `index` is retired to user space (TP_STATUS_USER) and not held.
    pub(crate) fn retired(&self, index: usize) -> bool {
        !self.held[index] && self.status(index).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }
    fn status(&self, index: usize) -> &AtomicU32 {
        let off = index * self.block_size
            + offset_of!(libc::tpacket_block_desc, hdr)
            + offset_of!(libc::tpacket_hdr_v1, block_status);
        // SAFETY: callers pass `index < block_count`, so `off` lies in the mapping;
        // block_status is an aligned u32 both sides access atomically; the reference
        // lives no longer than `&self`, hence than the mapping.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(off).cast::<u32>()) }
    }
    /// Moves the read position past the current block without handing it back: the
    /// zero-copy path keeps it until its write completed ([`RxRing::release`]).
    pub(crate) fn hold_current(&mut self) {
        self.held[self.next] = true;
        self.held_count += 1;
        self.next = (self.next + 1) % self.block_count;
    }
    /// Hands held block `index` back to the kernel (its write completed). Unknown or
    /// not-held indexes are ignored.
    pub fn release(&mut self, index: usize) {
        if self.held.get(index).copied().unwrap_or(false) {
            // Release: the kernel may refill the block only after the disk read it.
            self.status(index)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.held[index] = false;
            self.held_count -= 1;
        }
    }
    /// Blocks held by the zero-copy path (their writes in flight).
    pub fn held_blocks(&self) -> usize {
        self.held_count
    }
    pub fn block_count(&self) -> usize {
        self.block_count
    }

    /// How many blocks from the read position on the kernel has retired to user space and
    /// we have not handed back (the kernel retires blocks in ring order, so they are
    /// consecutive): the ring's fill. At `block_count` the kernel has nowhere to put the
    /// next frame. Reads one status word per retired block, plus one. Blocks held by the
    /// zero-copy path are not counted here ([`RxRing::held_blocks`]).
    pub fn ready_blocks(&self) -> usize {
        let mut n = 0;
        while n < self.block_count {
            let index = (self.next + n) % self.block_count;
            if self.held[index] {
                break;
            }
            let off = index * self.block_size
                + offset_of!(libc::tpacket_block_desc, hdr)
                + offset_of!(libc::tpacket_hdr_v1, block_status);
            // SAFETY: as in `current_block`: `index < block_count`, so `off` lies in the
            // mapping, and block_status is an aligned u32 both sides access atomically;
            // the reference does not outlive this call.
            let status: &AtomicU32 =
                unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(off).cast::<u32>()) };
            if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                break;
            }
            n += 1;
        }
        n
    }

    /// The block at the ring's read position, if the kernel has retired it to user space.
    /// The block stays ours (and the read position stays) until [`Block::consume`]: a
    /// caller that cannot store its packets yet keeps it, and the kernel buffers what
    /// arrives meanwhile in the rest of the ring.
    pub fn current_block(&mut self) -> Option<Block<'_>> {
        let index = self.next;
        if self.held[index] {
            // Still being written by the zero-copy path: the ring is full of held blocks.
            return None;
        }
        let off = index * self.block_size
            + offset_of!(libc::tpacket_block_desc, hdr)
            + offset_of!(libc::tpacket_hdr_v1, block_status);
        // SAFETY: `index < block_count`, so `off` lies in the mapping; block_status is a
        // 4-byte-aligned u32 (blocks are page aligned) that the kernel and we access only
        // atomically; the reference cannot outlive the mapping because the returned Block
        // borrows `self`.
        let status: &AtomicU32 =
            unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(off).cast::<u32>()) };
        if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let block_start = index * self.block_size;
        // SAFETY: the kernel retired this block to user space (TP_STATUS_USER, read with
        // Acquire): it will not write it until we store TP_STATUS_KERNEL. The descriptor
        // fields are plain u32 reads within the block.
        let (num_pkts, first, blk_len) = unsafe {
            let d = self
                .base
                .as_ptr()
                .add(block_start)
                .cast::<libc::tpacket_block_desc>();
            let h = std::ptr::addr_of!((*d).hdr.bh1);
            (
                std::ptr::addr_of!((*h).num_pkts).read_volatile(),
                std::ptr::addr_of!((*h).offset_to_first_pkt).read_volatile(),
                std::ptr::addr_of!((*h).blk_len).read_volatile(),
            )
        };
        let desc_len = size_of::<libc::tpacket_block_desc>();
        // SAFETY: the bytes after the descriptor belong to user space until the block is
        // handed back in `Block::drop` after `consume`, which happens after this slice's
        // last use (the slice never covers the status word, which is written atomically).
        let body = unsafe {
            std::slice::from_raw_parts(
                self.base.as_ptr().add(block_start + desc_len),
                self.block_size - desc_len,
            )
        };
        Some(Block {
            status,
            body,
            desc_len,
            num_pkts,
            first: first as usize,
            blk_len: blk_len as usize,
            next: &mut self.next,
            block_count: self.block_count,
            consumed: false,
        })
    }

    /// Waits until a block may be ready, at most `timeout_ms`.
    /// Clears a pending socket error as [`wait_any`] does; returns whether there was one.
    pub fn wait(&self, timeout_ms: i32) -> bool {
        wait_any(std::iter::once(self), timeout_ms) != 0
    }

    /// Reads and resets the kernel's counters for this socket.
    pub fn take_stats(&self) -> Result<KernelStats, SysError> {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(last_os_error("PACKET_STATISTICS"));
        }
        Ok(KernelStats {
            packets: u64::from(st.tp_packets),
            drops: u64::from(st.tp_drops),
            freeze_q: u64::from(st.tp_freeze_q_cnt),
        })
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `open`; no Block can outlive the
        // ring because it borrows it.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len) };
    }
}

/// Byte offsets inside `struct tpacket3_hdr`, taken from libc's definition.
mod field {
    use std::mem::offset_of;
    pub const NEXT_OFFSET: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
    pub const SEC: usize = offset_of!(libc::tpacket3_hdr, tp_sec);
    pub const NSEC: usize = offset_of!(libc::tpacket3_hdr, tp_nsec);
    pub const SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
    pub const LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
    pub const STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
    pub const MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
    pub const HV1: usize = offset_of!(libc::tpacket3_hdr, hv1);
    pub const VLAN_TCI: usize = HV1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
    pub const VLAN_TPID: usize = HV1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);
    pub const HDR_LEN: usize = size_of::<libc::tpacket3_hdr>();
}

/// A ring block owned by user space. Dropped after [`Block::consume`], it goes back to
/// the kernel and the ring moves on; dropped without, it stays ours for the next look.
pub struct Block<'a> {
    status: &'a AtomicU32,
    /// The block without its descriptor (offsets below are block-relative).
    body: &'a [u8],
    desc_len: usize,
    num_pkts: u32,
    first: usize,
    blk_len: usize,
    next: &'a mut usize,
    block_count: usize,
    consumed: bool,
}

impl<'a> Block<'a> {
    pub fn num_packets(&self) -> u32 {
        self.num_pkts
    }
    /// Bytes of the block the kernel filled.
    pub fn filled_len(&self) -> usize {
        self.blk_len
    }
    /// Every packet of the block has been dealt with: hand it back to the kernel.
    pub fn consume(mut self) {
        self.consumed = true;
    }
    /// The frames of this block, in arrival order.
    pub fn frames(&self) -> Frames<'_> {
        Frames {
            body: self.body,
            desc_len: self.desc_len,
            remaining: self.num_pkts,
            offset: self.first,
            malformed: false,
            prefetched: self.first.saturating_sub(self.desc_len),
            filled: self
                .blk_len
                .saturating_sub(self.desc_len)
                .min(self.body.len()),
        }
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        if self.consumed {
            // Release: our reads of the block happen before the kernel may refill it.
            self.status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
            *self.next = (*self.next + 1) % self.block_count;
        }
    }
}

/// A frame as the kernel put it into the ring.
#[derive(Clone, Copy, Debug)]
pub struct RawFrame<'a> {
    /// The captured bytes, starting at the MAC header (without a VLAN tag the kernel stripped).
    pub data: &'a [u8],
    /// Length on the wire as the kernel saw it (without the stripped tag).
    pub wire_len: u32,
    pub ts_sec: u32,
    pub ts_nsec: u32,
    /// `TP_STATUS_*` bits.
    pub status: u32,
    pub vlan_tci: u16,
    pub vlan_tpid: u16,
}

/// Iterator over the frames of a [`Block`]; stops (and reports malformed) on bad offsets.
pub struct Frames<'a> {
    body: &'a [u8],
    desc_len: usize,
    remaining: u32,
    offset: usize,
    malformed: bool,
    /// Body offset up to which cache lines were prefetched.
    prefetched: usize,
    /// Body bytes the kernel filled.
    filled: usize,
}

/// How far ahead of the frame being handled the block is pulled into the cache. The
/// kernel wrote these lines on the sending core (its softirq); reading them cold costs a
/// cross-core transfer per line, which a prefetch ~one 1500 B frame (or a few small ones)
/// ahead overlaps with the work on the current frame.
pub const PREFETCH_AHEAD: usize = 4096;
const CACHE_LINE: usize = 64;

impl Frames<'_> {
    /// The block's frame chain pointed outside the block (iteration stopped early).
    pub fn malformed(&self) -> bool {
        self.malformed
    }

    /// Prefetches the lines of the filled part of the block up to body offset `end`, each
    /// line once per block.
    #[inline]
    fn prefetch_to(&mut self, end: usize) {
        let end = end.min(self.filled);
        while self.prefetched < end {
            prefetch_line(self.body, self.prefetched);
            self.prefetched += CACHE_LINE;
        }
    }
}

/// A hint to load the line holding `b[at]` (no-op off x86_64 or out of bounds).
#[inline(always)]
fn prefetch_line(b: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = b.get(at) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of the x86_64 baseline; a prefetch is a hint that never
        // faults, and the address is inside the borrowed block anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (b, at);
}

fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}
fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]))
}

impl<'a> Iterator for Frames<'a> {
    type Item = RawFrame<'a>;
    fn next(&mut self) -> Option<RawFrame<'a>> {
        if self.remaining == 0 || self.malformed {
            return None;
        }
        if let Some(h) = self.offset.checked_sub(self.desc_len) {
            self.prefetch_to(h.saturating_add(PREFETCH_AHEAD));
        }
        let parsed = (|| {
            let h = self.offset.checked_sub(self.desc_len)?;
            let hdr = self.body.get(h..h + field::HDR_LEN)?;
            let snap = rd_u32(hdr, field::SNAPLEN)? as usize;
            let mac = rd_u16(hdr, field::MAC)? as usize;
            let data = self.body.get(h + mac..h + mac + snap)?;
            let frame = RawFrame {
                data,
                wire_len: rd_u32(hdr, field::LEN)?,
                ts_sec: rd_u32(hdr, field::SEC)?,
                ts_nsec: rd_u32(hdr, field::NSEC)?,
                status: rd_u32(hdr, field::STATUS)?,
                vlan_tci: rd_u32(hdr, field::VLAN_TCI)? as u16,
                vlan_tpid: rd_u16(hdr, field::VLAN_TPID)?,
            };
            Some((frame, rd_u32(hdr, field::NEXT_OFFSET)? as usize))
        })();
        match parsed {
            Some((frame, next)) => {
                self.remaining -= 1;
                if self.remaining > 0 {
                    if next == 0 {
                        self.malformed = true;
                    }
                    self.offset += next;
                }
                Some(frame)
            }
            None => {
                self.malformed = true;
                None
            }
        }
    }
}
