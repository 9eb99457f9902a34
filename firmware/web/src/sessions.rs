//! Login sessions, in memory: a random 256-bit id (the cookie), the user, a CSRF token and
//! the last use. A session idle longer than the timeout ends; a restart ends them all
//! (users log in again, nothing is lost). Capped so a login flood cannot grow memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most live sessions; the least recently used one ends when a new login needs room.
pub const MAX_SESSIONS: usize = 1024;

#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    /// The user's password generation at login: a password change ends older sessions.
    pub generation: u64,
    last: Instant,
}

pub struct Sessions {
    idle: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            idle,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session; returns its id.
    pub fn start(&self, user: &str, generation: u64) -> (String, Session) {
        let id = crate::random_hex(32);
        let s = Session {
            user: user.into(),
            csrf: crate::random_hex(32),
            generation,
            last: Instant::now(),
        };
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let idle = self.idle;
        m.retain(|_, s| s.last.elapsed() < idle);
        if m.len() >= MAX_SESSIONS
            && let Some(oldest) = m.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(id.clone(), s.clone());
        (id, s)
    }

    /// The live session with this id (refreshing its idle timer).
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = m.get_mut(id)?;
        if s.last.elapsed() >= self.idle {
            m.remove(id);
            return None;
        }
        s.last = Instant::now();
        Some(s.clone())
    }

    pub fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Ends every session of `user` except `keep`.
    pub fn end_user(&self, user: &str, keep: Option<&str>) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, s| s.user != user || Some(id.as_str()) == keep);
    }
}
