// The widget's words in the languages Seva speaks; the page's language picks one.

const strings = {
  en: {
    dir: "ltr",
    open: "Chat with us",
    title: "Chat",
    close: "Close",
    placeholder: "Write a message…",
    send: "Send",
    name: "Your name",
    email: "Your email (for our answer if you leave)",
    connecting: "Connecting…",
    reconnecting: "Connection lost. Reconnecting…",
    typing: "An agent is typing…",
    errors: {
      rate_limited: "You are sending messages too fast. Wait a moment.",
      text_too_long: "That message is too long.",
      invalid_email: "That email address does not look right.",
      other: "Your message could not be sent.",
    },
  },
  fa: {
    dir: "rtl",
    open: "گفتگو با ما",
    title: "گفتگو",
    close: "بستن",
    placeholder: "پیامی بنویسید…",
    send: "ارسال",
    name: "نام شما",
    email: "ایمیل شما (برای پاسخ، اگر رفتید)",
    connecting: "در حال اتصال…",
    reconnecting: "اتصال قطع شد. در حال اتصال دوباره…",
    typing: "پشتیبان در حال نوشتن است…",
    errors: {
      rate_limited: "پیام‌ها را خیلی سریع می‌فرستید. کمی صبر کنید.",
      text_too_long: "این پیام خیلی طولانی است.",
      invalid_email: "این نشانی ایمیل درست به نظر نمی‌رسد.",
      other: "پیام شما فرستاده نشد.",
    },
  },
  mr: {
    dir: "ltr",
    open: "आमच्याशी बोला",
    title: "संवाद",
    close: "बंद करा",
    placeholder: "संदेश लिहा…",
    send: "पाठवा",
    name: "तुमचे नाव",
    email: "तुमचा ईमेल (तुम्ही गेलात तर उत्तरासाठी)",
    connecting: "जोडत आहे…",
    reconnecting: "संपर्क तुटला. पुन्हा जोडत आहे…",
    typing: "सहाय्यक लिहित आहे…",
    errors: {
      rate_limited: "तुम्ही संदेश खूप वेगाने पाठवत आहात. थोडे थांबा.",
      text_too_long: "हा संदेश खूप मोठा आहे.",
      invalid_email: "हा ईमेल पत्ता बरोबर दिसत नाही.",
      other: "तुमचा संदेश पाठवता आला नाही.",
    },
  },
  hi: {
    dir: "ltr",
    open: "हमसे बात करें",
    title: "बातचीत",
    close: "बंद करें",
    placeholder: "संदेश लिखें…",
    send: "भेजें",
    name: "आपका नाम",
    email: "आपका ईमेल (आप चले जाएँ तो उत्तर के लिए)",
    connecting: "जोड़ रहे हैं…",
    reconnecting: "संपर्क टूट गया। फिर से जोड़ रहे हैं…",
    typing: "सहायक लिख रहा है…",
    errors: {
      rate_limited: "आप संदेश बहुत तेज़ी से भेज रहे हैं। थोड़ा रुकें।",
      text_too_long: "यह संदेश बहुत लंबा है।",
      invalid_email: "यह ईमेल पता सही नहीं लगता।",
      other: "आपका संदेश भेजा नहीं जा सका।",
    },
  },
};

export function catalogue(lang) {
  const chosen = strings[lang] ? lang : "en";
  return { lang: chosen, ...strings[chosen] };
}
