// emoji is the small built-in emoji set for reactions and the picker: [name, character, group].

/** EMOJI lists emoji by group; names are the common Discord shortcodes. */
export const EMOJI: Array<[string, string, string]> = (
  [
    ["People", "grinning 😀 smiley 😃 smile 😄 grin 😁 laughing 😆 sweat_smile 😅 joy 😂 rofl 🤣 slight_smile 🙂 upside_down 🙃 wink 😉 blush 😊 innocent 😇 heart_eyes 😍 star_struck 🤩 kissing_heart 😘 yum 😋 stuck_out_tongue 😛 zany_face 🤪 hugging 🤗 thinking 🤔 shushing_face 🤫 neutral_face 😐 expressionless 😑 no_mouth 😶 smirk 😏 unamused 😒 rolling_eyes 🙄 grimacing 😬 relieved 😌 pensive 😔 sleepy 😪 sleeping 😴 mask 😷 nauseated_face 🤢 sneezing_face 🤧 hot_face 🥵 cold_face 🥶 dizzy_face 😵 exploding_head 🤯 cowboy 🤠 partying_face 🥳 sunglasses 😎 nerd 🤓 confused 😕 worried 😟 open_mouth 😮 astonished 😲 flushed 😳 pleading_face 🥺 fearful 😨 cry 😢 sob 😭 scream 😱 angry 😠 rage 😡 skull 💀 clown 🤡 ghost 👻 alien 👽 robot 🤖 poop 💩"],
    ["Gestures", "thumbsup 👍 thumbsdown 👎 ok_hand 👌 v ✌️ crossed_fingers 🤞 metal 🤘 call_me 🤙 point_up 👆 point_down 👇 wave 👋 clap 👏 raised_hands 🙌 open_hands 👐 pray 🙏 handshake 🤝 muscle 💪 eyes 👀 brain 🧠 facepalm 🤦 shrug 🤷 salute 🫡"],
    ["Symbols", "heart ❤️ orange_heart 🧡 yellow_heart 💛 green_heart 💚 blue_heart 💙 purple_heart 💜 black_heart 🖤 broken_heart 💔 sparkling_heart 💖 fire 🔥 sparkles ✨ star ⭐ zap ⚡ boom 💥 100 💯 white_check_mark ✅ x ❌ warning ⚠️ question ❓ exclamation ❗ heavy_plus_sign ➕ heavy_minus_sign ➖ arrow_up ⬆️ arrow_down ⬇️ recycle ♻️ no_entry ⛔"],
    ["Things", "tada 🎉 confetti_ball 🎊 gift 🎁 trophy 🏆 medal 🏅 rocket 🚀 bulb 💡 books 📚 memo 📝 pushpin 📌 paperclip 📎 lock 🔒 key 🔑 hammer 🔨 wrench 🔧 gear ⚙️ computer 💻 keyboard ⌨️ phone 📱 bell 🔔 mega 📣 hourglass ⌛ alarm_clock ⏰ coffee ☕ tea 🍵 beer 🍺 pizza 🍕 cake 🍰 cookie 🍪 taco 🌮 popcorn 🍿"],
    ["Nature", "sun ☀️ cloud ☁️ rainbow 🌈 snowflake ❄️ umbrella ☔ earth 🌍 moon 🌙 seedling 🌱 evergreen 🌲 cactus 🌵 rose 🌹 sunflower 🌻 dog 🐶 cat 🐱 fox 🦊 bear 🐻 panda 🐼 penguin 🐧 owl 🦉 frog 🐸 turtle 🐢 snake 🐍 octopus 🐙 crab 🦀 bee 🐝 butterfly 🦋 unicorn 🦄 dragon 🐉"],
  ] as Array<[string, string]>
).flatMap(([group, s]) => {
  const parts = s.split(" ");
  const out: Array<[string, string, string]> = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1], group]);
  return out;
});

/** byName maps shortcode to emoji, for ":name:" in the composer. */
export const byName = new Map(EMOJI.map(([n, e]) => [n, e]));
