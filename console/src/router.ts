import { createRouter, createWebHistory } from 'vue-router'
import { whenSignedOut } from './api'
import { forget, loadSession, session } from './session'

// One chunk per page: the sign-in page loads none of the others (nor ECharts).
export const router = createRouter({
  history: createWebHistory('/console/'),
  routes: [
    { path: '/sign-in', name: 'sign-in', component: () => import('./pages/SignIn.vue'), meta: { public: true } },
    {
      path: '/',
      component: () => import('./pages/Shell.vue'),
      children: [
        { path: '', name: 'dashboard', component: () => import('./pages/Dashboard.vue'), meta: { title: '数据看板' } },
        { path: 'stores', name: 'stores', component: () => import('./pages/Stores.vue'), meta: { title: '门店与导购' } },
        { path: 'channels', name: 'channels', component: () => import('./pages/Channels.vue'), meta: { title: '渠道与聚合码' } },
        { path: 'customers', name: 'customers', component: () => import('./pages/Customers.vue'), meta: { title: '客户' } },
        { path: 'customers/:id', name: 'customer', component: () => import('./pages/Customer.vue'), meta: { title: '客户详情' } },
        { path: 'members', name: 'members', component: () => import('./pages/Members.vue'), meta: { title: '会员与券' } },
        { path: 'campaigns', name: 'campaigns', component: () => import('./pages/Campaigns.vue'), meta: { title: '群发活动' } },
        { path: 'campaigns/:id', name: 'campaign', component: () => import('./pages/Campaign.vue'), meta: { title: '活动结果' } },
        { path: 'sop', name: 'sop', component: () => import('./pages/Sop.vue'), meta: { title: 'SOP' } },
        { path: 'ops', name: 'ops', component: () => import('./pages/Ops.vue'), meta: { title: '运维', hq: true } },
      ],
    },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!session.checked) {
    try {
      await loadSession()
    } catch {
      // The service is unreachable: the sign-in page says so when the person tries.
    }
  }
  if (!session.user) return { name: 'sign-in', query: { next: to.fullPath } }
  if (to.meta.hq && session.user.role !== 'hq_admin') return { name: 'dashboard' }
  document.title = `${to.meta.title ?? '控制台'} · 导购助手`
  return true
})

// A session that ends while someone works: sign in again, then come back to the same page.
whenSignedOut(() => {
  forget()
  const here = router.currentRoute.value
  if (!here.meta.public) void router.push({ name: 'sign-in', query: { next: here.fullPath, expired: '1' } })
})
