//! A demo neighborhood for `porchlight demo`: an admin, a resident, a
//! verified fire-department agency, a moderator and about twenty posts over
//! a few cells of a city-sized area, in several categories.
//!
//! Seeding is idempotent: when the demo admin exists nothing is added.
//! The accounts' passwords are public (they are printed by the demo), so a
//! demo database must never be exposed as a real neighborhood.

use h3o::{LatLng, Resolution};
use serde_json::json;

use crate::accounts::Role;
use crate::db::now_ms;
use crate::posts::Category;
use crate::{Error, Neighborhood, Result, UserId};

/// One demo account's credentials.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub username: &'static str,
    pub password: &'static str,
    pub role: Role,
    pub id: UserId,
}

/// What [`Neighborhood::seed_demo`] created (or found).
#[derive(Debug, Clone)]
pub struct Demo {
    pub accounts: Vec<DemoAccount>,
    /// The resident's home cell (resolution 8).
    pub home_cell: h3o::CellIndex,
    pub posts: usize,
}

/// Centre of the demo area (a neighborhood in Seattle; any place would do).
const DEMO_LAT: f64 = 47.6205;
const DEMO_LNG: f64 = -122.3493;

const ACCOUNTS: &[(&str, &str, &str, Role, Option<&str>)] = &[
    (
        "admin",
        "demo-admin-password",
        "Neighborhood Admin",
        Role::Admin,
        None,
    ),
    (
        "maria",
        "demo-resident-password",
        "Maria",
        Role::Neighbor,
        None,
    ),
    (
        "firedept",
        "demo-agency-password",
        "Station 8",
        Role::Agency,
        Some("Seattle Fire Department"),
    ),
    (
        "mod",
        "demo-moderator-password",
        "Sam (moderator)",
        Role::Moderator,
        None,
    ),
    ("jun", "demo-neighbor-password", "Jun", Role::Neighbor, None),
];

impl Neighborhood {
    /// Seeds the demo neighborhood (idempotent).
    pub async fn seed_demo(&self) -> Result<Demo> {
        let home = LatLng::new(DEMO_LAT, DEMO_LNG)
            .map_err(|e| Error::Invalid(format!("demo centre: {e}")))?
            .to_cell(Resolution::Eight);
        let already = self.user_id("admin").await.is_ok();
        let mut accounts = Vec::new();
        for (username, password, display, role, agency) in ACCOUNTS {
            let id = if already {
                self.user_id(username).await?
            } else {
                let id = self
                    .admin_create_user(None, username, password, display, *role, *agency)
                    .await?;
                if *role == Role::Agency {
                    self.verify_agency(None, id).await?;
                }
                if *role != Role::Agency {
                    self.set_area(id, &home.to_string(), Some(3.0)).await?;
                }
                id
            };
            accounts.push(DemoAccount {
                username,
                password,
                role: *role,
                id,
            });
        }
        if already {
            return Ok(Demo {
                accounts,
                home_cell: home,
                posts: 0,
            });
        }
        let id_of = |u: &str| {
            accounts
                .iter()
                .find(|a| a.username == u)
                .map(|a| a.id)
                .unwrap_or(0)
        };
        // Around the shared demo home, never on it: a post never shows its
        // author's home cell (issue 14 item 7).
        let cells: Vec<h3o::CellIndex> = home
            .grid_disk::<Vec<_>>(2)
            .into_iter()
            .filter(|c| *c != home)
            .collect();
        let now = now_ms();
        let hour = 3_600_000;
        let posts: Vec<(&str, Category, &str, &str, serde_json::Value)> = vec![
            ("maria", Category::LostFoundPet, "Lost: grey tabby cat, Miso", "Miso slipped out last night near the park. Grey tabby, green collar, very shy. Please check sheds and garages!", json!({})),
            ("jun", Category::Wildlife, "Coyote on the trail at dusk", "Saw a coyote trotting along the greenbelt trail around 7pm. Keep small pets inside in the evening.", json!({})),
            ("firedept", Category::SafetyTip, "Check your smoke alarms this weekend", "Daylight saving time ends Sunday. Test every smoke alarm and replace batteries older than a year.", json!({})),
            ("maria", Category::MutualAid, "Offering: spare winter coats", "We have three kids' winter coats (sizes 6-10) in good shape. Free to anyone who needs them.", json!({"kind": "offer", "status": "open"})),
            ("jun", Category::MutualAid, "Request: ride to a clinic appointment Tuesday", "Looking for a ride to the clinic on Tuesday morning, happy to pay for gas.", json!({"kind": "request", "status": "open"})),
            ("maria", Category::CommunityEvent, "Block cleanup and potluck", "Bring gloves and a dish to share. Bags and grabbers provided.", json!({"date": "2026-12-12", "time": "10:00", "place": "the corner of the pocket park"})),
            ("firedept", Category::Alert, "Road closure: water main repair", "Expect the avenue closed between 3rd and 5th until Friday evening. Emergency access is maintained.", json!({})),
            ("jun", Category::NeighborlyMoment, "Thank you to whoever shovelled our walk", "Woke up to a clear sidewalk this morning. Whoever you are, thank you!", json!({})),
            ("maria", Category::CrimeSafety, "Car window broken overnight", "Our car's rear window was smashed overnight and a bag taken. Reported to police. Please lock up and keep valuables out of sight.", json!({})),
            ("jun", Category::Suspicious, "Someone trying car door handles", "Around 2am a person was walking down the block pulling on car door handles. Adult, dark hoodie, grey backpack, on a bicycle. They left when a porch light came on.", json!({})),
            ("firedept", Category::Information, "Free blood pressure checks at Station 8", "Drop in any Saturday between 10 and 2 for a free check with our paramedics.", json!({})),
            ("maria", Category::Wildlife, "Raccoon family in the storm drain", "A mother raccoon and three kits live in the drain by the school. Please give them space.", json!({})),
            ("jun", Category::LostFoundPet, "Found: small brown dog with red harness", "Found a friendly small brown dog with a red harness near the bus stop. He is safe with us.", json!({})),
            ("firedept", Category::Event, "Fire station open house", "Meet the crew, see the engines and learn hands-only CPR.", json!({"date": "2026-12-19", "time": "11:00", "place": "Fire Station 8"})),
            ("maria", Category::NeighborlyMoment, "Little free library restocked", "Added a box of children's books to the little free library on our corner. Enjoy!", json!({})),
            ("jun", Category::MutualAid, "Offering: help with snow tires", "I have a jack and time on weekends; happy to help swap tires.", json!({"kind": "offer", "status": "open"})),
            ("maria", Category::CommunityEvent, "Tool swap", "Bring tools you no longer use, take what you need.", json!({"date": "2026-12-05", "time": "14:00", "place": "community center parking lot"})),
            ("firedept", Category::SafetyTip, "Space heaters need three feet", "Keep anything that can burn at least three feet from space heaters and never use extension cords with them.", json!({})),
            ("jun", Category::Wildlife, "Barred owl calling at night", "If you hear hooting around midnight, it is a barred owl in the tall firs.", json!({})),
            ("maria", Category::CrimeSafety, "Package theft on our street", "Two packages were taken from porches on our street this afternoon. Consider delivery to a pickup point.", json!({})),
        ];
        let mut n = 0;
        for (i, (who, cat, title, body, extra)) in posts.iter().enumerate() {
            let cell = cells[i % cells.len()];
            let at = now - (posts.len() - i) as i64 * 3 * hour;
            self.insert_post_raw(id_of(who), *cat, title, body, cell, extra.clone(), at)
                .await?;
            n += 1;
        }
        Ok(Demo {
            accounts,
            home_cell: home,
            posts: n,
        })
    }
}
